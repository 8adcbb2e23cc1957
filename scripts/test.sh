#!/usr/bin/env bash
# npm test: installs what it needs, typechecks, runs the fuzz smoke run, then every unit, contract and end-to-end test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
npx tsc --noEmit
# A few seconds of fuzzing per parser; fails on any finding, and if the fuzzer or clang is missing.
bash scripts/fuzz.sh smoke
mapfile -t files < <(find test/unit contract-tests test/e2e -name '*.test.ts' 2>/dev/null | sort)
if [ ${#files[@]} -eq 0 ]; then echo "no test files found" >&2; exit 1; fi
set +e
node --import tsx --test --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination=.test-results.tap "${files[@]}"
status=$?
set -e
pass=$(grep -E '^# pass ' .test-results.tap | awk '{print $3}')
fail=$(grep -E '^# fail ' .test-results.tap | awk '{print $3}')
echo "tests: ${pass:-0} passed, ${fail:-0} failed"
if [ "${pass:-0}" = 0 ]; then echo "no test ran" >&2; exit 1; fi
exit $status
