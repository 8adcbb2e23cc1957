#!/usr/bin/env bash
# npm run build:lib: the library (src/) and the contract suites compiled to
# dist/lib with their .d.ts, for the package's exports.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf dist/lib
npx tsc -p tsconfig.build.json
# tsc emits no file for ambient declarations, and writes the reference to
# them relative to the source tree; ship them and point at the shipped copy.
cp -r src/types dist/lib/src/types
sed -i 's#^/// <reference path="[./]*src/types/#/// <reference path="../../../types/#' dist/lib/src/adapters/outbound/http/undici.d.ts
grep -q '^/// <reference path="../../../types/undici-internals.d.ts"' dist/lib/src/adapters/outbound/http/undici.d.ts
