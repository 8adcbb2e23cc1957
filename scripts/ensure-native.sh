#!/usr/bin/env bash
# Builds the native addon when it is missing, or when it was built before
# libisal's headers were installed (it then lacks the in-process gzip decoder).
set -euo pipefail
cd "$(dirname "$0")/.."
addon=native/build/Release/syscalls.node
if [ ! -f "$addon" ] || { [ -f /usr/include/isa-l/igzip_lib.h ] && ! node -e "process.exit(require('./$addon').gunzipOpen ? 0 : 1)"; }; then
  npm run build:native
fi
