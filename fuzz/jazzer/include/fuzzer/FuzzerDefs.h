/*
 * Stands in for libFuzzer's internal header, which Debian's libclang-rt
 * package does not ship: Jazzer.js's utils.cpp needs only these two names.
 * Its call to fuzzer::FuzzerDriver goes to compat.cpp's wrapper instead.
 */
#pragma once
#include <cstddef>
#include <cstdint>

namespace fuzzer {
typedef int (*UserCallback)(const uint8_t *Data, size_t Size);
int CompatFuzzerDriver(int *argc, char ***argv, UserCallback Callback);
} // namespace fuzzer

#define FuzzerDriver CompatFuzzerDriver
