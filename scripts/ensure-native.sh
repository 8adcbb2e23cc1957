#!/usr/bin/env bash
# Builds the native addon when it is missing, older than its sources, or
# built before libisal's headers were installed (it then lacks the
# in-process gzip decoder).
set -euo pipefail
cd "$(dirname "$0")/.."
addon=native/build/Release/syscalls.node
if [ ! -f "$addon" ] || [ -n "$(find native/src native/binding.gyp -newer "$addon" -print -quit)" ] ||
  { [ -f /usr/include/isa-l/igzip_lib.h ] && ! node -e "process.exit(require('./$addon').gunzipOpen ? 0 : 1)"; }; then
  npm run build:native
fi
