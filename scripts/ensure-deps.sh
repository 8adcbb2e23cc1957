#!/usr/bin/env bash
# Installs what the tests and the demo need. Fails loudly; never skips.
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A NEED=(
  [docker-registry]=docker-registry [skopeo]=skopeo [busybox]=busybox-static
  [setfattr]=attr [htpasswd]=apache2-utils [openssl]=openssl [umoci]=umoci
  [igzip]=isal [zstd]=zstd [script]=bsdutils [gpg]=gnupg [gpg-agent]=gpg-agent [getfattr]=attr
  [bsdtar]=libarchive-tools [buildah]=buildah [python3]=python3
  [clang]=clang [veritysetup]=cryptsetup-bin [mkfs.erofs]=erofs-utils
)
missing=()
for cmd in "${!NEED[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${NEED[$cmd]}")
done
# busybox must be the static build: the bundle test runs it under chroot.
if command -v busybox >/dev/null 2>&1 && ! file -L "$(command -v busybox)" 2>/dev/null | grep -q 'statically linked'; then
  [ -x /bin/busybox ] && ldd /bin/busybox >/dev/null 2>&1 && missing+=(busybox-static)
fi
# Headers for the addon's in-process ISA-L gzip decoder (native/src/gunzip.c).
[ -f /usr/include/isa-l/igzip_lib.h ] || missing+=(libisal-dev)
# libFuzzer, for the fuzz smoke run (scripts/fuzz.sh); the clang package does not pull it in.
compgen -G '/usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer_no_main-x86_64.a' >/dev/null || missing+=(libclang-rt-14-dev)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "image-ts tests need these Debian packages: ${missing[*]} (run as root, or apt-get install them)" >&2
    exit 1
  fi
  echo "installing: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" file >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
bash scripts/ensure-native.sh
npm run build >/dev/null
