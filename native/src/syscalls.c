/*
 * The few Linux syscalls that Node does not expose and that unpacking and
 * mounting need: mknod (devices, fifos, overlay whiteouts), the l*xattr family
 * (PAX xattrs, overlay opaque markers) and mount/umount2 (overlay snapshots).
 * writeFile and finishFile make a small file's six syscalls one call from JS,
 * which is where a small-file layer's time went. flock gives the store locks
 * that the kernel drops when their holder dies, kill -9 included; peerCred
 * tells serve who is on the other end of a unix socket. lseek's
 * SEEK_DATA/SEEK_HOLE let a sparse file be copied hole for hole. loopAttach
 * binds an image file to a loop device that detaches itself once nobody holds
 * it, so an EROFS layer can be mounted without ever leaking the device. Paths
 * are strings, or Buffers for names that are not UTF-8.
 * All calls are synchronous and cheap; errors are thrown as Node-style errors
 * with .code (errno name), .errno (negative, as libuv), .syscall and .path.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <linux/loop.h>
#include <node_api.h>
#include "args.h"
#ifdef HAVE_ISAL
#include "gunzip.h"
#endif

static const char *errno_name(int e) {
  switch (e) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EIO: return "EIO";
    case ENXIO: return "ENXIO";
    case E2BIG: return "E2BIG";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case ENOTBLK: return "ENOTBLK";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case EXDEV: return "EXDEV";
    case ENODEV: return "ENODEV";
    case ENOTDIR: return "ENOTDIR";
    case ENOTTY: return "ENOTTY";
    case EISDIR: return "EISDIR";
    case EINVAL: return "EINVAL";
    case ENFILE: return "ENFILE";
    case EMFILE: return "EMFILE";
    case ENOSPC: return "ENOSPC";
    case EROFS: return "EROFS";
    case EMLINK: return "EMLINK";
    case ERANGE: return "ERANGE";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ENOSYS: return "ENOSYS";
    case ELOOP: return "ELOOP";
    case ENODATA: return "ENODATA";
    case EOPNOTSUPP: return "ENOTSUP"; /* same value as ENOTSUP on Linux; libuv's name */
    case EDQUOT: return "EDQUOT";
    case ESTALE: return "ESTALE";
    default: return "UNKNOWN";
  }
}

/* Throws an Error shaped like Node's own fs errors. Always returns NULL. */
static napi_value throw_errno(napi_env env, int e, const char *syscall, const char *path) {
  char msg[512];
  napi_value code, message, error, value;
  const char *name = errno_name(e);
  if (path)
    snprintf(msg, sizeof msg, "%s: %s, %s '%s'", name, strerror(e), syscall, path);
  else
    snprintf(msg, sizeof msg, "%s: %s, %s", name, strerror(e), syscall);
  if (napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code) != napi_ok) return NULL;
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message) != napi_ok) return NULL;
  if (napi_create_error(env, code, message, &error) != napi_ok) return NULL;
  if (napi_create_int32(env, -e, &value) == napi_ok) napi_set_named_property(env, error, "errno", value);
  if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &value) == napi_ok)
    napi_set_named_property(env, error, "syscall", value);
  if (path && napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &value) == napi_ok)
    napi_set_named_property(env, error, "path", value);
  napi_throw(env, error);
  return NULL;
}

/*
 * Copies a JS string argument into a malloc'd C string (caller frees). With
 * nullable, null/undefined give *out = NULL. Returns 0 on success, -1 with a
 * pending TypeError.
 */
static int get_string(napi_env env, napi_value v, int nullable, const char *what, char **out) {
  napi_valuetype t;
  size_t len;
  *out = NULL;
  if (napi_typeof(env, v, &t) != napi_ok) return -1;
  if (nullable && (t == napi_null || t == napi_undefined)) return 0;
  if (t != napi_string) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
    return -1;
  }
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return -1;
  *out = malloc(len + 1);
  if (!*out) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return -1;
  }
  if (napi_get_value_string_utf8(env, v, *out, len + 1, &len) != napi_ok) {
    free(*out);
    *out = NULL;
    return -1;
  }
  if (strlen(*out) != len) { /* an embedded NUL would silently shorten the path */
    free(*out);
    *out = NULL;
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "string contains a NUL byte");
    return -1;
  }
  return 0;
}

/*
 * A path: a JS string (UTF-8), or a Buffer/Uint8Array holding the path's
 * bytes as the kernel takes them, for names that are not UTF-8. Copied into
 * a malloc'd C string (caller frees). Returns 0, or -1 with a pending TypeError.
 */
static int get_path(napi_env env, napi_value v, const char *what, char **out) {
  bool is_typed;
  void *data;
  size_t len;
  *out = NULL;
  if (napi_is_typedarray(env, v, &is_typed) != napi_ok) return -1;
  if (!is_typed) return get_string(env, v, 0, what, out);
  if (get_bytes(env, v, what, &data, &len)) return -1;
  if (memchr(data, 0, len) != NULL) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "path contains a NUL byte");
    return -1;
  }
  *out = malloc(len + 1);
  if (!*out) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return -1;
  }
  memcpy(*out, data, len);
  (*out)[len] = 0;
  return 0;
}

/* mknod(path, mode, major, minor): mode includes the file type bits. */
static napi_value Mknod(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  char *path;
  uint32_t mode, major, minor;
  if (get_args(env, info, 4, argv)) return NULL;
  if (get_u32(env, argv[1], "mode must be a number", &mode) || get_u32(env, argv[2], "major must be a number", &major) ||
      get_u32(env, argv[3], "minor must be a number", &minor))
    return NULL;
  if (get_path(env, argv[0], "path must be a string or a Buffer", &path)) return NULL;
  if (mknod(path, (mode_t)mode, makedev(major, minor)) != 0) {
    int e = errno;
    throw_errno(env, e, "mknod", path);
  }
  free(path);
  return NULL;
}

/* lsetxattr(path, name, value: Buffer | Uint8Array) */
static napi_value Lsetxattr(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  char *path, *name;
  void *data;
  size_t len;
  if (get_args(env, info, 3, argv)) return NULL;
  if (get_bytes(env, argv[2], "value must be a Buffer or Uint8Array", &data, &len)) return NULL;
  if (get_path(env, argv[0], "path must be a string or a Buffer", &path)) return NULL;
  if (get_string(env, argv[1], 0, "name must be a string", &name)) {
    free(path);
    return NULL;
  }
  if (lsetxattr(path, name, data, len, 0) != 0) {
    int e = errno;
    throw_errno(env, e, "lsetxattr", path);
  }
  free(name);
  free(path);
  return NULL;
}

/* lgetxattr(path, name) -> Buffer, or null when the attribute is absent. */
static napi_value Lgetxattr(napi_env env, napi_callback_info info) {
  napi_value argv[2], result = NULL;
  char *path, *name, *buf = NULL;
  ssize_t n;
  int e = 0;
  if (get_args(env, info, 2, argv)) return NULL;
  if (get_path(env, argv[0], "path must be a string or a Buffer", &path)) return NULL;
  if (get_string(env, argv[1], 0, "name must be a string", &name)) {
    free(path);
    return NULL;
  }
  for (;;) { /* the value may grow between the size query and the read */
    n = lgetxattr(path, name, NULL, 0);
    if (n < 0) { e = errno; break; }
    free(buf);
    buf = malloc(n > 0 ? (size_t)n : 1);
    if (!buf) { e = ENOMEM; break; }
    n = lgetxattr(path, name, buf, (size_t)n);
    if (n >= 0) break;
    if (errno != ERANGE) { e = errno; break; }
  }
  if (e == ENODATA) {
    napi_get_null(env, &result);
  } else if (e != 0) {
    throw_errno(env, e, "lgetxattr", path);
  } else {
    void *out;
    napi_create_buffer_copy(env, (size_t)n, buf, &out, &result);
  }
  free(buf);
  free(name);
  free(path);
  return result;
}

/* llistxattr(path) -> string[] */
static napi_value Llistxattr(napi_env env, napi_callback_info info) {
  napi_value argv[1], result = NULL;
  char *path, *buf = NULL;
  ssize_t n;
  int e = 0;
  if (get_args(env, info, 1, argv)) return NULL;
  if (get_path(env, argv[0], "path must be a string or a Buffer", &path)) return NULL;
  for (;;) {
    n = llistxattr(path, NULL, 0);
    if (n < 0) { e = errno; break; }
    if (n == 0) break;
    free(buf);
    buf = malloc((size_t)n);
    if (!buf) { e = ENOMEM; break; }
    n = llistxattr(path, buf, (size_t)n);
    if (n >= 0) break;
    if (errno != ERANGE) { e = errno; break; }
  }
  if (e == ENOTSUP) {
    n = 0; /* a filesystem without xattrs has none */
  } else if (e != 0) {
    throw_errno(env, e, "llistxattr", path);
    goto done;
  }
  if (napi_create_array(env, &result) != napi_ok) { result = NULL; goto done; }
  {
    uint32_t i = 0;
    ssize_t off = 0;
    while (off < n) {
      size_t len = strnlen(buf + off, (size_t)(n - off));
      napi_value s;
      if (napi_create_string_utf8(env, buf + off, len, &s) != napi_ok ||
          napi_set_element(env, result, i++, s) != napi_ok) {
        result = NULL;
        break;
      }
      off += (ssize_t)len + 1;
    }
  }
done:
  free(buf);
  free(path);
  return result;
}

/* mount(source, target, fstype, flags, data); source/fstype/data may be null. */
static napi_value Mount(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  char *source = NULL, *target = NULL, *fstype = NULL, *data = NULL;
  uint32_t flags;
  if (get_args(env, info, 5, argv)) return NULL;
  if (get_u32(env, argv[3], "flags must be a number", &flags)) return NULL;
  if (get_string(env, argv[0], 1, "source must be a string or null", &source)) goto done;
  if (get_string(env, argv[1], 0, "target must be a string", &target)) goto done;
  if (get_string(env, argv[2], 1, "fstype must be a string or null", &fstype)) goto done;
  if (get_string(env, argv[4], 1, "data must be a string or null", &data)) goto done;
  if (mount(source, target, fstype, (unsigned long)flags, data) != 0) {
    int e = errno;
    throw_errno(env, e, "mount", target);
  }
done:
  free(source);
  free(target);
  free(fstype);
  free(data);
  return NULL;
}

/* umount2(target, flags) */
static napi_value Umount2(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char *target;
  uint32_t flags;
  if (get_args(env, info, 2, argv)) return NULL;
  if (get_u32(env, argv[1], "flags must be a number", &flags)) return NULL;
  if (get_string(env, argv[0], 0, "target must be a string", &target)) return NULL;
  if (umount2(target, (int)flags) != 0) {
    int e = errno;
    throw_errno(env, e, "umount2", target);
  }
  free(target);
  return NULL;
}

/*
 * Seconds (with a fraction) as a timespec; NaN, infinite or past what time_t
 * holds gives UTIME_OMIT (converting such a double to time_t is undefined).
 */
static struct timespec to_timespec(double seconds) {
  struct timespec ts;
  double whole;
  if (!isfinite(seconds) || seconds >= 0x1p63 || seconds < -0x1p63) {
    ts.tv_sec = 0;
    ts.tv_nsec = UTIME_OMIT;
    return ts;
  }
  whole = floor(seconds);
  ts.tv_sec = (time_t)whole;
  ts.tv_nsec = (long)((seconds - whole) * 1e9);
  if (ts.tv_nsec > 999999999) ts.tv_nsec = 999999999;
  return ts;
}

#define FILE_CHOWN 1
#define FILE_CHMOD 2

/* Owner, mode and times of an open file. */
static int finish_fd(int fd, uint32_t mode, uint32_t uid, uint32_t gid, double atime, double mtime, uint32_t flags,
                     const char **failed) {
  struct timespec times[2];
  int e = 0;
  if ((flags & FILE_CHOWN) && fchown(fd, (uid_t)uid, (gid_t)gid) != 0) {
    e = errno;
    *failed = "fchown";
  } else if ((flags & FILE_CHMOD) && fchmod(fd, (mode_t)mode) != 0) {
    e = errno;
    *failed = "fchmod";
  } else {
    times[0] = to_timespec(atime);
    times[1] = to_timespec(mtime);
    if (futimens(fd, times) != 0) {
      e = errno;
      *failed = "futimens";
    }
  }
  return e;
}

/*
 * writeFile(path, data, mode, uid, gid, atime, mtime, flags): one call for a
 * whole small file, which is most of a layer's entries. Creates with
 * O_EXCL|O_NOFOLLOW (never writes through an existing name; EEXIST is thrown
 * for the caller to resolve), writes all of data, then applies owner
 * (flags & 1), the full mode (flags & 2, after chown, which clears setuid)
 * and times, and closes.
 */
static napi_value WriteFile(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  char *path;
  void *data;
  size_t len, done = 0;
  uint32_t mode, uid, gid, flags;
  double atime, mtime;
  const char *failed = "open";
  int fd, e = 0;
  if (get_args(env, info, 8, argv)) return NULL;
  if (get_bytes(env, argv[1], "data must be a Buffer or Uint8Array", &data, &len)) return NULL;
  if (get_u32(env, argv[2], "mode must be a number", &mode) || get_u32(env, argv[3], "uid must be a number", &uid) ||
      get_u32(env, argv[4], "gid must be a number", &gid) || get_double(env, argv[5], "atime must be a number", &atime) ||
      get_double(env, argv[6], "mtime must be a number", &mtime) || get_u32(env, argv[7], "flags must be a number", &flags))
    return NULL;
  if (get_path(env, argv[0], "path must be a string or a Buffer", &path)) return NULL;
  fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)(mode & 0777));
  if (fd < 0) {
    e = errno;
  } else {
    while (done < len) {
      ssize_t n = write(fd, (const char *)data + done, len - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        e = errno;
        failed = "write";
        break;
      }
      done += (size_t)n;
    }
    if (e == 0) e = finish_fd(fd, mode, uid, gid, atime, mtime, flags, &failed);
    if (close(fd) != 0 && e == 0) {
      e = errno;
      failed = "close";
    }
  }
  if (e != 0) throw_errno(env, e, failed, path);
  free(path);
  return NULL;
}

/*
 * lutimes(path, atime, mtime): the times of whatever is at path, a symlink
 * itself included (utimensat with AT_SYMLINK_NOFOLLOW). Seconds as doubles,
 * before 1970 too: node's utimes family takes a negative time for "now".
 */
static napi_value Lutimes(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  char *path;
  double atime, mtime;
  struct timespec times[2];
  if (get_args(env, info, 3, argv)) return NULL;
  if (get_double(env, argv[1], "atime must be a number", &atime) || get_double(env, argv[2], "mtime must be a number", &mtime)) return NULL;
  if (get_path(env, argv[0], "path must be a string or a Buffer", &path)) return NULL;
  times[0] = to_timespec(atime);
  times[1] = to_timespec(mtime);
  if (utimensat(AT_FDCWD, path, times, AT_SYMLINK_NOFOLLOW) != 0) {
    int e = errno;
    throw_errno(env, e, "utimensat", path);
  }
  free(path);
  return NULL;
}

/*
 * finishFile(fd, mode, uid, gid, atime, mtime, flags): the owner, mode and
 * times steps of writeFile, for a file written in pieces. The descriptor
 * stays open: node opened it and must close it, since worker threads track
 * the descriptors they open and close any left at exit.
 */
static napi_value FinishFile(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  uint32_t fd, mode, uid, gid, flags;
  double atime, mtime;
  const char *failed = "futimens";
  int e;
  if (get_args(env, info, 7, argv)) return NULL;
  if (get_u32(env, argv[0], "fd must be a number", &fd) || get_u32(env, argv[1], "mode must be a number", &mode) ||
      get_u32(env, argv[2], "uid must be a number", &uid) || get_u32(env, argv[3], "gid must be a number", &gid) ||
      get_double(env, argv[4], "atime must be a number", &atime) || get_double(env, argv[5], "mtime must be a number", &mtime) ||
      get_u32(env, argv[6], "flags must be a number", &flags))
    return NULL;
  e = finish_fd((int)fd, mode, uid, gid, atime, mtime, flags, &failed);
  if (e != 0) throw_errno(env, e, failed, NULL);
  return NULL;
}

/*
 * lseek(fd, offset, whence) -> the new offset, or -1 when whence is
 * SEEK_DATA or SEEK_HOLE and no such region starts at or after offset
 * (ENXIO). Offsets are doubles, exact up to 2^53. Node has no lseek, and
 * SEEK_DATA/SEEK_HOLE are how a sparse file is copied hole for hole.
 */
static napi_value Lseek(napi_env env, napi_callback_info info) {
  napi_value argv[3], result;
  uint32_t fd, whence;
  double offset;
  off_t r;
  if (get_args(env, info, 3, argv)) return NULL;
  if (get_u32(env, argv[0], "fd must be a number", &fd) || get_double(env, argv[1], "offset must be a number", &offset) ||
      get_u32(env, argv[2], "whence must be a number", &whence))
    return NULL;
  if (!(offset >= 0 && offset <= 9007199254740992.0)) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "offset out of range");
    return NULL;
  }
  r = lseek((int)fd, (off_t)offset, (int)whence);
  if (r < 0) {
    if (errno == ENXIO && (whence == SEEK_DATA || whence == SEEK_HOLE)) r = -1;
    else return throw_errno(env, errno, "lseek", NULL);
  }
  if (napi_create_double(env, (double)r, &result) != napi_ok) return NULL;
  return result;
}

#ifndef LOOP_CONFIGURE /* headers older than Linux 5.8 */
#define LOOP_CONFIGURE 0x4C0A
struct loop_config {
  __u32 fd;
  __u32 block_size;
  struct loop_info64 info;
  __u64 __reserved[8];
};
#endif

/* Another process may bind the device LOOP_CTL_GET_FREE named before we do; then ask again. */
#define LOOP_ATTACH_TRIES 16

/*
 * loopAttach(path) -> [fd, device]: binds the file at path, read-only, to a
 * free loop device with LO_FLAGS_AUTOCLEAR, and returns an open descriptor of
 * the device (O_CLOEXEC, so no child keeps it) and its path. The kernel
 * detaches an autoclear device when its last opener goes: the caller keeps fd
 * open until mount(2) holds the device, then closes it, and the device goes
 * away at umount, or at once if the process dies before mounting. Uses
 * LOOP_CONFIGURE (Linux 5.8), which binds and sets the flags in one step;
 * older kernels (ENOTTY, or EINVAL before 5.x) get LOOP_SET_FD, read-only
 * because the backing file is, then LOOP_SET_STATUS64 for autoclear, and a
 * death between the two leaves that device bound. The backing descriptor is
 * closed here: the device holds its own reference to the file.
 */
/* Records a failed call of LoopAttach for its error, and ends the attempt. */
#define FAIL(call, where) \
  do {                     \
    e = errno;             \
    failed = (call);       \
    failed_path = (where); \
    goto done;             \
  } while (0)

static napi_value LoopAttach(napi_env env, napi_callback_info info) {
  napi_value argv[1], result = NULL, v;
  char *path;
  char device[32];
  const char *failed = NULL, *failed_path = NULL;
  int file_fd, ctl_fd = -1, loop_fd = -1, e = 0, legacy = 0, tries;
  if (get_args(env, info, 1, argv)) return NULL;
  if (get_string(env, argv[0], 0, "path must be a string", &path)) return NULL;
  device[0] = 0;
  file_fd = open(path, O_RDONLY | O_CLOEXEC);
  if (file_fd < 0) FAIL("open", path);
  ctl_fd = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
  if (ctl_fd < 0) FAIL("open", "/dev/loop-control");
  /*
   * LOOP_CTL_GET_FREE names the lowest free device to every caller alike, so
   * concurrent attaches all race for it and most lose. Processes that lock
   * loop-control take turns instead (for microseconds; closing ctl_fd, or
   * dying, unlocks); others, losetup say, can still take the device first,
   * which the EBUSY retries below absorb.
   */
  while (flock(ctl_fd, LOCK_EX) != 0)
    if (errno != EINTR) FAIL("flock", "/dev/loop-control");
  for (tries = 0; tries < LOOP_ATTACH_TRIES; tries++) {
    struct loop_config config;
    int n = ioctl(ctl_fd, LOOP_CTL_GET_FREE);
    if (n < 0) FAIL("ioctl(LOOP_CTL_GET_FREE)", "/dev/loop-control");
    snprintf(device, sizeof device, "/dev/loop%d", n);
    /* Read-only suffices to configure (CAP_SYS_ADMIN is what the ioctls check), and makes the device read-only too. */
    loop_fd = open(device, O_RDONLY | O_CLOEXEC);
    if (loop_fd < 0) FAIL("open", device);
    memset(&config, 0, sizeof config);
    config.fd = (__u32)file_fd;
    config.info.lo_flags = LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR; /* no LO_FLAGS_DIRECT_IO: cached reads */
    strncpy((char *)config.info.lo_file_name, path, LO_NAME_SIZE - 1); /* what losetup shows without sysfs */
    if (!legacy) {
      if (ioctl(loop_fd, LOOP_CONFIGURE, &config) == 0) goto done;
      e = errno;
      failed = "ioctl(LOOP_CONFIGURE)";
      if (e == ENOTTY || e == EINVAL) legacy = 1; /* a kernel before 5.8: try the old pair on the same device */
    }
    if (legacy) {
      if (ioctl(loop_fd, LOOP_SET_FD, file_fd) == 0) {
        config.info.lo_flags = LO_FLAGS_AUTOCLEAR; /* SET_STATUS cannot set READ_ONLY; the O_RDONLY backing file did */
        if (ioctl(loop_fd, LOOP_SET_STATUS64, &config.info) == 0) goto done;
        e = errno;
        failed = "ioctl(LOOP_SET_STATUS64)";
        ioctl(loop_fd, LOOP_CLR_FD, 0); /* not autoclear yet: detach it by hand */
      } else {
        e = errno;
        failed = "ioctl(LOOP_SET_FD)";
      }
    }
    failed_path = device;
    close(loop_fd);
    loop_fd = -1;
    if (e != EBUSY) goto done;
    /* Whoever holds the device may still be configuring it, and until it is done GET_FREE names the same one. */
    usleep(1000 * (useconds_t)(tries + 1));
  }
done:
  if (ctl_fd >= 0) close(ctl_fd);
  if (file_fd >= 0) close(file_fd);
  if (loop_fd >= 0) {
    if (napi_create_array_with_length(env, 2, &result) != napi_ok || napi_create_int32(env, loop_fd, &v) != napi_ok ||
        napi_set_element(env, result, 0, v) != napi_ok || napi_create_string_utf8(env, device, NAPI_AUTO_LENGTH, &v) != napi_ok ||
        napi_set_element(env, result, 1, v) != napi_ok) {
      close(loop_fd); /* autoclear: closing the only opener detaches the device */
      result = NULL;
    }
  } else {
    throw_errno(env, e, failed, failed_path);
  }
  free(path);
  return result;
}
#undef FAIL

/* flock(fd, operation) -> true, or false when LOCK_NB was asked and another holds the lock. */
static napi_value Flock(napi_env env, napi_callback_info info) {
  napi_value argv[2], result;
  uint32_t fd, op;
  int r;
  if (get_args(env, info, 2, argv)) return NULL;
  if (get_u32(env, argv[0], "fd must be a number", &fd) || get_u32(env, argv[1], "operation must be a number", &op)) return NULL;
  do {
    r = flock((int)fd, (int)op);
  } while (r != 0 && errno == EINTR);
  if (r != 0 && errno != EWOULDBLOCK) return throw_errno(env, errno, "flock", NULL);
  if (napi_get_boolean(env, r == 0, &result) != napi_ok) return NULL;
  return result;
}

/* peerCred(fd) -> [pid, uid, gid] of the process that connected a unix socket (SO_PEERCRED). */
static napi_value PeerCred(napi_env env, napi_callback_info info) {
  napi_value argv[1], result, v;
  uint32_t fd;
  struct ucred cred;
  socklen_t len = sizeof cred;
  uint32_t values[3];
  if (get_args(env, info, 1, argv)) return NULL;
  if (get_u32(env, argv[0], "fd must be a number", &fd)) return NULL;
  if (getsockopt((int)fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return throw_errno(env, errno, "getsockopt", NULL);
  values[0] = (uint32_t)cred.pid;
  values[1] = (uint32_t)cred.uid;
  values[2] = (uint32_t)cred.gid;
  if (napi_create_array_with_length(env, 3, &result) != napi_ok) return NULL;
  for (uint32_t i = 0; i < 3; i++) {
    if (napi_create_uint32(env, values[i], &v) != napi_ok || napi_set_element(env, result, i, v) != napi_ok) return NULL;
  }
  return result;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
    {"mknod", NULL, Mknod, NULL, NULL, NULL, napi_enumerable, NULL},
    {"lsetxattr", NULL, Lsetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
    {"lgetxattr", NULL, Lgetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
    {"llistxattr", NULL, Llistxattr, NULL, NULL, NULL, napi_enumerable, NULL},
    {"mount", NULL, Mount, NULL, NULL, NULL, napi_enumerable, NULL},
    {"umount2", NULL, Umount2, NULL, NULL, NULL, napi_enumerable, NULL},
    {"writeFile", NULL, WriteFile, NULL, NULL, NULL, napi_enumerable, NULL},
    {"finishFile", NULL, FinishFile, NULL, NULL, NULL, napi_enumerable, NULL},
    {"flock", NULL, Flock, NULL, NULL, NULL, napi_enumerable, NULL},
    {"peerCred", NULL, PeerCred, NULL, NULL, NULL, napi_enumerable, NULL},
    {"lseek", NULL, Lseek, NULL, NULL, NULL, napi_enumerable, NULL},
    {"lutimes", NULL, Lutimes, NULL, NULL, NULL, napi_enumerable, NULL},
    {"loopAttach", NULL, LoopAttach, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
#ifdef HAVE_ISAL
  if (gunzip_register(env, exports) != napi_ok) return NULL;
#endif
  return exports;
}
