{
  "variables": {
    "has_isal": "<!(test -f /usr/include/isa-l/igzip_lib.h && echo 1 || echo 0)"
  },
  "targets": [
    {
      "target_name": "syscalls",
      "sources": ["src/syscalls.c", "src/gunzip.c", "src/gunzip-core.c"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "conditions": [
        ["has_isal==1", { "defines": ["HAVE_ISAL"], "libraries": ["-lisal"] }]
      ]
    }
  ]
}
