"""Writes a layer tar of SRC with Python's tarfile, for the tar writer corpus (test/harness/tar-writers.ts).

usage: py-tar.py gnu|pax|ustar SRC OUT

Names stay bytes (surrogateescape): GNU format writes them as they are, PAX
with hdrcharset=BINARY. In PAX format, user.* xattrs go in as
SCHILY.xattr.* records, which tarfile writes but does not read from disk.
"""
import os
import sys
import tarfile

FORMATS = {"gnu": tarfile.GNU_FORMAT, "pax": tarfile.PAX_FORMAT, "ustar": tarfile.USTAR_FORMAT}


def main() -> None:
    fmt, src, out = sys.argv[1], sys.argv[2], sys.argv[3]

    def with_xattrs(info: tarfile.TarInfo) -> tarfile.TarInfo:
        if fmt == "pax" and not info.issym():
            path = os.path.join(src, info.name)
            for name in os.listxattr(path, follow_symlinks=False):
                if name.startswith("user."):
                    value = os.getxattr(path, name, follow_symlinks=False)
                    info.pax_headers["SCHILY.xattr." + name] = value.decode("utf-8")
        return info

    with tarfile.open(out, "w", format=FORMATS[fmt], encoding="utf-8", errors="surrogateescape") as tar:
        tar.add(src, arcname=".", recursive=True, filter=with_xattrs)


if __name__ == "__main__":
    main()
