/*
 * Lets Jazzer.js 2.1.0's addon run on Debian's stock libFuzzer
 * (libclang_rt.fuzzer_no_main from libclang-rt-14-dev) instead of the
 * patched compiler-rt its CMake build downloads, which cannot be fetched here.
 * The patched libFuzzer differs in four ways that matter, made up for here:
 *
 * - it has `_with_pc` variants of two tracing hooks: the stock ones take the
 *   caller's address as the PC, which only blurs value profiling;
 * - it hands the addon its death callback (which writes the crash file): the
 *   stock one offers it to a sanitizer runtime through
 *   __sanitizer_set_death_callback, defined here;
 * - it ends the fuzzing loop when the callback returns -2 (Jazzer.js's
 *   RETURN_EXIT, after a finding was printed and its input written): the
 *   stock one would go on calling into a JS target that has already failed,
 *   so the process exits here with Jazzer.js's finding status (77);
 * - in async mode the target runs on node's main thread and libFuzzer on
 *   another, and the stock timeout handler ignores the SIGALRM that lands on
 *   any thread but libFuzzer's: a watchdog sends it there once a second so
 *   that -timeout catches a hung input in async mode too.
 */
#include <atomic>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <pthread.h>
#include <thread>
#include <unistd.h>

namespace libfuzzer {
extern void (*PrintCrashingInput)();
}

namespace fuzzer {
typedef int (*UserCallback)(const uint8_t *Data, size_t Size);
int FuzzerDriver(int *argc, char ***argv, UserCallback Callback); // the stock one
} // namespace fuzzer

extern "C" {
void __sanitizer_cov_trace_const_cmp8(uint64_t a, uint64_t b);
void __sanitizer_cov_trace_pc_indir(uintptr_t callee);

void __sanitizer_cov_trace_const_cmp8_with_pc(uintptr_t, uint64_t a, uint64_t b) { __sanitizer_cov_trace_const_cmp8(a, b); }
void __sanitizer_cov_trace_pc_indir_with_pc(void *, uintptr_t callee) { __sanitizer_cov_trace_pc_indir(callee); }
void __sanitizer_set_death_callback(void (*callback)(void)) { libfuzzer::PrintCrashingInput = callback; }
}

namespace {
constexpr int kReturnExit = -2;
constexpr int kFindingExit = 77;

fuzzer::UserCallback gTarget;
pthread_t gFuzzThread;
std::atomic<bool> gStarted{false};

[[noreturn]] void Watchdog() {
  for (;;) {
    sleep(1);
    pthread_kill(gFuzzThread, SIGALRM);
  }
}

int Callback(const uint8_t *data, size_t size) {
  if (!gStarted.exchange(true)) {
    // libFuzzer has set up its signal handlers by the first run; without -timeout it has none for SIGALRM.
    struct sigaction sa {};
    sigaction(SIGALRM, nullptr, &sa);
    if (sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN) std::thread(Watchdog).detach();
  }
  int result = gTarget(data, size);
  if (result == kReturnExit) {
    fflush(stdout);
    fflush(stderr);
    _Exit(kFindingExit);
  }
  return result;
}
} // namespace

namespace fuzzer {
int CompatFuzzerDriver(int *argc, char ***argv, UserCallback callback) {
  gTarget = callback;
  gFuzzThread = pthread_self();
  return FuzzerDriver(argc, argv, Callback);
}
} // namespace fuzzer
