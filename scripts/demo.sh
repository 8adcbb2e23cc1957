#!/usr/bin/env bash
# npm run demo: install what the project needs, build it, and run the demo offline.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
bash scripts/ensure-native.sh
npm run build >/dev/null
exec node --import tsx scripts/demo.ts
