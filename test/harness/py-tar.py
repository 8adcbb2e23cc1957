"""Layer tars written by Python's tarfile, for the corpus (test/harness/tar-writers.ts, test/e2e/builders.test.ts).

usage: py-tar.py gnu|pax|ustar SRC OUT      the tree at SRC, as ./
       py-tar.py entries SPEC.json OUT      the entries SPEC lists, in PAX format

Names stay bytes (surrogateescape): GNU format writes them as they are, PAX
with hdrcharset=BINARY; in SPEC a byte that is not UTF-8 is a \\udcXX
escape. In PAX format, user.* xattrs of SRC go in as SCHILY.xattr.* records,
which tarfile writes but does not read from disk. A SPEC entry's "pax"
records are written as given, empty values included.
"""
import io
import json
import os
import sys
import tarfile

FORMATS = {"gnu": tarfile.GNU_FORMAT, "pax": tarfile.PAX_FORMAT, "ustar": tarfile.USTAR_FORMAT}
TYPES = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE}


def tree(fmt: str, src: str, out: str) -> None:
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


def entries(spec: str, out: str) -> None:
    with open(spec, encoding="utf-8") as f:
        items = json.load(f)
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT, encoding="utf-8", errors="surrogateescape") as tar:
        for item in items:
            info = tarfile.TarInfo(item["name"])
            info.type = TYPES[item.get("type", "file")]
            info.mode = item.get("mode", 0o755 if info.type == tarfile.DIRTYPE else 0o644)
            info.uid = item.get("uid", 0)
            info.gid = item.get("gid", 0)
            info.mtime = item.get("mtime", 1_600_000_000)
            info.linkname = item.get("linkname", "")
            info.pax_headers = dict(item.get("pax", {}))
            data = item.get("content", "").encode("utf-8")
            info.size = len(data) if info.type == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(data) if info.size else None)


def main() -> None:
    if sys.argv[1] == "entries":
        entries(sys.argv[2], sys.argv[3])
    else:
        tree(sys.argv[1], sys.argv[2], sys.argv[3])


if __name__ == "__main__":
    main()
