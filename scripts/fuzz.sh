#!/usr/bin/env bash
# Coverage-guided fuzzing of the parsers that read untrusted bytes (README "Fuzzing").
#
#   scripts/fuzz.sh smoke [SECONDS]           every target for SECONDS (default 4) each, FUZZ_JOBS (default: cores)
#                                             at a time; npm test runs this
#   scripts/fuzz.sh run TARGET SECONDS [-- LIBFUZZER FLAGS...]
#                                             one target for longer; its corpus grows in fuzz/.work/corpus/TARGET
#   scripts/fuzz.sh long SECONDS [TARGET...]  each target (default: all) for SECONDS, restarted after a finding
#                                             until its time is up; prints runs, coverage and findings per target
#   scripts/fuzz.sh replay TARGET FILE...     runs the target once on each file (a crash, say), no fuzzing
#   scripts/fuzz.sh list                      the targets
#   scripts/fuzz.sh setup                     builds what the others need (they call it themselves)
#
# JS targets (fuzz/targets/NAME.ts) run under Jazzer.js, whose native addon is
# built here from the sources its npm package ships, against Debian's
# libFuzzer (fuzz/jazzer/compat.cpp says why). The C target `gunzip` is
# native/src/gunzip-core.c under libFuzzer with AddressSanitizer and UBSan.
# Findings land in fuzz/.work/artifacts/. Missing clang or libFuzzer is an
# error, never a skip: scripts/ensure-deps.sh installs both.
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${FUZZ_WORK:-fuzz/.work}
BUILD=${FUZZ_BUILD:-fuzz/.build}
ADDON=fuzz/node_modules/@jazzer.js/fuzzer/build/Release/jazzerjs.node

die() {
  echo "fuzz: $*" >&2
  exit 1
}

js_targets() { for f in fuzz/targets/*.ts; do basename "$f" .ts; done; }
all_targets() { js_targets; echo gunzip; }

setup() {
  command -v clang >/dev/null 2>&1 || die "clang is missing (apt-get install clang libclang-rt-14-dev, or run scripts/ensure-deps.sh)"
  local rt
  rt=$(clang --print-runtime-dir)
  [ -f "$rt/libclang_rt.fuzzer_no_main-x86_64.a" ] || die "libFuzzer is missing from $rt (apt-get install libclang-rt-$(clang -dumpversion | cut -d. -f1)-dev)"
  [ -f /usr/include/isa-l/igzip_lib.h ] || die "libisal-dev is missing (apt-get install libisal-dev)"
  # Jazzer.js's install script downloads a prebuilt addon or a patched LLVM: neither can be fetched, so no scripts run.
  if [ ! -f fuzz/node_modules/.package-lock.json ] || [ fuzz/package-lock.json -nt fuzz/node_modules/.package-lock.json ]; then
    npm ci --prefix fuzz --ignore-scripts --no-audit --no-fund >/dev/null
  fi
  local src=fuzz/node_modules/@jazzer.js/fuzzer
  if [ ! -f "$ADDON" ] || [ -n "$(find fuzz/jazzer -newer "$ADDON" -print -quit)" ]; then
    echo "fuzz: building the Jazzer.js addon" >&2
    mkdir -p "$(dirname "$ADDON")"
    clang++ -std=c++17 -O2 -fPIC -shared -fexceptions -DNAPI_VERSION=4 -DNAPI_CPP_EXCEPTIONS \
      -I/usr/include/node -Ifuzz/node_modules/node-addon-api -Ifuzz/jazzer/include \
      "$src"/*.cpp "$src"/shared/*.cpp fuzz/jazzer/compat.cpp \
      -Wl,--whole-archive "$rt/libclang_rt.fuzzer_no_main-x86_64.a" -Wl,--no-whole-archive \
      -lpthread -o "$ADDON.tmp"
    mv "$ADDON.tmp" "$ADDON"
  fi
  [ -f native/build/Release/syscalls.node ] || bash scripts/ensure-native.sh
  # One CommonJS bundle per target: Jazzer.js 2 instruments what require() loads.
  rm -rf "$BUILD"
  mkdir -p "$BUILD"
  local entries=(canary=fuzz/canary.ts)
  for t in $(js_targets); do entries+=("$t=fuzz/targets/$t.ts"); done
  npx esbuild "${entries[@]}" --bundle --platform=node --target=node20 --format=cjs --packages=external \
    --outdir="$BUILD" --out-extension:.js=.cjs --sourcemap=inline --log-level=warning \
    --define:import.meta.url=__bundleUrl --banner:js="const __bundleUrl = require('node:url').pathToFileURL(__filename).href;"
  clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -DHAVE_ISAL \
    -Inative/src native/src/gunzip-core.c fuzz/gunzip/gunzip-fuzz.c -lisal -o "$BUILD/gunzip-fuzz"
}

# fuzzer TARGET ARGS...: the target's fuzzer binary or Jazzer.js command line, with ARGS (corpus dirs or files, then flags).
fuzzer() {
  local target=$1
  shift
  if [ "$target" = gunzip ]; then
    "$BUILD/gunzip-fuzz" "$@"
    return
  fi
  [ -f "fuzz/targets/$target.ts" ] || die "no target $target (scripts/fuzz.sh list)"
  local inputs=() mode=(--sync)
  while [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; do
    inputs+=("$1")
    shift
  done
  # Async targets (sockets, WebCrypto) run in Jazzer.js's async mode; the rest synchronously, which is faster.
  grep -q '^export async function fuzz' "fuzz/targets/$target.ts" && mode=()
  # Jazzer.js's path-traversal detector flags any fs call with ../../jaz_zer in an argument, symlink targets
  # included, which the unpacker stores verbatim on purpose; the tar harness checks escapes itself, exactly.
  case $target in tar | tar-privileged) mode+=(--disable_bug_detectors=path-traversal) ;; esac
  node --max-old-space-size=2048 --enable-source-maps fuzz/node_modules/@jazzer.js/core/dist/cli.js \
    "$BUILD/$target.cjs" "${inputs[@]}" "${mode[@]}" -- "$@"
}

# run_target TARGET SECONDS OUT_CORPUS [LIBFUZZER FLAGS...]: new inputs go to OUT_CORPUS, never to the seeds.
run_target() {
  local target=$1 seconds=$2 out=$3
  shift 3
  mkdir -p "$out" "$WORK/artifacts"
  local dict=()
  [ -f "fuzz/dict/$target.dict" ] && dict=(-dict="fuzz/dict/$target.dict")
  fuzzer "$target" "$out" "fuzz/corpus/$target" "${dict[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=3072 -max_len=65536 \
    -artifact_prefix="$WORK/artifacts/$target-" -print_final_stats=1 "$@"
}

cmd=${1:-smoke}
shift || true
case "$cmd" in
  list) all_targets ;;
  setup) setup ;;
  smoke)
    seconds=${1:-4}
    setup
    started=$(date +%s)
    failed=()
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' EXIT
    # The canary's planted bug must be found (exit 77) before a clean target means anything.
    mkdir -p "$scratch/canary"
    set +e
    node fuzz/node_modules/@jazzer.js/core/dist/cli.js "$BUILD/canary.cjs" "$scratch/canary" -- -max_total_time=60 \
      -artifact_prefix="$scratch/canary-" >"$scratch/canary.log" 2>&1
    status=$?
    set -e
    if [ $status -ne 77 ] || ! ls "$scratch"/canary-crash-* >/dev/null 2>&1; then
      tail -n 20 "$scratch/canary.log" >&2
      die "the fuzzer did not find the canary's planted bug (exit $status): fuzzing is not working"
    fi
    echo "fuzz canary: planted bug found after $(grep -Eo '^#[0-9]+' "$scratch/canary.log" | tail -1 | tr -d '#') runs"
    # One target per core at a time: most of a few seconds' run is starting node and loading the seeds.
    jobs=${FUZZ_JOBS:-$(nproc)}
    for t in $(all_targets); do
      (
        set +e
        run_target "$t" "$seconds" "$scratch/$t" >"$scratch/$t.log" 2>&1
        echo $? >"$scratch/$t.rc"
      ) &
      while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
    done
    wait
    for t in $(all_targets); do
      log="$scratch/$t.log"
      if [ "$(cat "$scratch/$t.rc")" = 0 ]; then
        echo "fuzz $t: $(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$') runs, $(grep -Eo 'cov: [0-9]+' "$log" | tail -1)"
      else
        echo "fuzz $t: FAILED" >&2
        tail -n 40 "$log" >&2
        failed+=("$t")
      fi
    done
    echo "fuzz smoke: $(all_targets | wc -l) targets in $(($(date +%s) - started))s, ${#failed[@]} failed"
    [ ${#failed[@]} -eq 0 ] || die "failing targets: ${failed[*]} (inputs in $WORK/artifacts)"
    ;;
  run)
    [ $# -ge 2 ] || die "usage: scripts/fuzz.sh run TARGET SECONDS [-- LIBFUZZER FLAGS...]"
    target=$1 seconds=$2
    shift 2
    [ "${1:-}" = -- ] && shift
    setup
    run_target "$target" "$seconds" "$WORK/corpus/$target" "$@"
    ;;
  long)
    [ $# -ge 1 ] || die "usage: scripts/fuzz.sh long SECONDS [TARGET...]"
    seconds=$1
    shift
    targets=("$@")
    [ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(all_targets)
    setup
    mkdir -p "$WORK/logs"
    for t in "${targets[@]}"; do
      started=$(date +%s) runs=0 findings=0 cov=0 attempt=0
      while left=$((seconds - ($(date +%s) - started))) && [ $left -gt 0 ]; do
        log="$WORK/logs/$t.$attempt.log"
        run_target "$t" "$left" "$WORK/corpus/$t" >"$log" 2>&1 || findings=$((findings + 1))
        runs=$((runs + $(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || echo 0)))
        cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1 | grep -Eo '[0-9]+' || echo "$cov")
        attempt=$((attempt + 1))
      done
      echo "fuzz $t: $runs runs in $(($(date +%s) - started))s, cov $cov, corpus $(find "$WORK/corpus/$t" -type f | wc -l) inputs, $findings findings (logs: $WORK/logs/$t.*)"
    done
    ;;
  replay)
    [ $# -ge 2 ] || die "usage: scripts/fuzz.sh replay TARGET FILE..."
    target=$1
    shift
    setup
    fuzzer "$target" "$@" -timeout=10
    ;;
  *) die "unknown command $cmd (smoke, run, long, replay, list, setup)" ;;
esac
