{
  "targets": [
    {
      "target_name": "syscalls",
      "sources": ["src/syscalls.c"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
