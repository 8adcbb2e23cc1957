#!/usr/bin/env bash
# npm run bench: installs the peers (containerd, skopeo, umoci) and the tools, builds, and runs bench/run.ts.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "npm run bench needs root (overlay mounts, containerd, tmpfs)" >&2; exit 1; fi
need=()
for pair in containerd:containerd ctr:containerd skopeo:skopeo umoci:umoci docker-registry:docker-registry igzip:isal zstd:zstd openssl:openssl; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair##*:}")
done
[ -f /usr/include/isa-l/igzip_lib.h ] || need+=(libisal-dev) # the addon's in-process gzip decoder
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${need[@]}" | sort -u) >/dev/null
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then npm ci --no-audit --no-fund; fi
bash scripts/ensure-native.sh
npm run build >/dev/null
exec node --import tsx bench/run.ts "$@"
