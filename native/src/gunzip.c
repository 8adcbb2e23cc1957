/*
 * gzip decompression in process with ISA-L's igzip (libisal), about four
 * times zlib's speed here. Built only where libisal's headers are found
 * (binding.gyp defines HAVE_ISAL); without them the addon has no gunzip
 * functions and image-ts runs the igzip tool or node's zlib instead.
 *
 *   gunzipOpen() -> handle
 *   gunzipPush(handle, input: Uint8Array, chunkSize) -> [buf, used, buf, used, ...]
 *   gunzipEnd(handle)   throws unless the last gzip member ended cleanly
 *
 * Members follow one another as gzip(1) and node's zlib allow; bytes after a
 * member that do not start another one are ignored, as node's zlib does (the
 * layer digest covers them anyway). The CRC-32 and length of every member
 * are checked by isal_inflate.
 */
#ifdef HAVE_ISAL
#include <isa-l/igzip_lib.h>
#include <stdlib.h>
#include <string.h>
#include <node_api.h>
#include "gunzip.h"

typedef struct {
  struct inflate_state state;
  int member_done;   /* the current member ended (trailer checked) */
  int members;       /* members begun */
  int ignoring;      /* trailing bytes after the last member */
} gunzip_t;

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

static void begin_member(gunzip_t *g) {
  isal_inflate_init(&g->state);
  g->state.crc_flag = ISAL_GZIP;
  g->member_done = 0;
  g->members++;
}

static const char *describe(int ret) {
  switch (ret) {
    case ISAL_INVALID_BLOCK: return "invalid deflate block";
    case ISAL_INVALID_SYMBOL: return "invalid deflate symbol";
    case ISAL_INVALID_LOOKBACK: return "invalid lookback distance";
    case ISAL_INVALID_WRAPPER: return "invalid gzip header";
    case ISAL_UNSUPPORTED_METHOD: return "unsupported compression method";
    case ISAL_INCORRECT_CHECKSUM: return "incorrect gzip checksum";
    case ISAL_NEED_DICT: return "deflate dictionary required";
    default: return "gzip decoding failed";
  }
}

static gunzip_t *get_handle(napi_env env, napi_value v) {
  void *data = NULL;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "handle must come from gunzipOpen");
    return NULL;
  }
  if (napi_get_value_external(env, v, &data) != napi_ok) return NULL;
  return data;
}

static napi_value GunzipOpen(napi_env env, napi_callback_info info) {
  napi_value handle;
  gunzip_t *g = calloc(1, sizeof *g);
  (void)info;
  if (!g) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  begin_member(g);
  if (napi_create_external(env, g, finalize, NULL, &handle) != napi_ok) {
    free(g);
    return NULL;
  }
  return handle;
}

static napi_value GunzipPush(napi_env env, napi_callback_info info) {
  napi_value argv[3], result, buf = NULL;
  size_t argc = 3, len, offset;
  void *in;
  uint8_t *out = NULL;
  uint32_t chunk, n = 0, used = 0, cap = 0;
  bool is_typed;
  napi_typedarray_type type;
  napi_value ab;
  gunzip_t *g;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 3) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "missing arguments");
    return NULL;
  }
  if (!(g = get_handle(env, argv[0]))) return NULL;
  if (napi_is_typedarray(env, argv[1], &is_typed) != napi_ok) return NULL;
  if (!is_typed || napi_get_typedarray_info(env, argv[1], &type, &len, &in, &ab, &offset) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "input must be a Buffer or Uint8Array");
    return NULL;
  }
  if (napi_get_value_uint32(env, argv[2], &chunk) != napi_ok || chunk == 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "chunkSize must be a positive number");
    return NULL;
  }
  if (napi_create_array(env, &result) != napi_ok) return NULL;
  if (g->ignoring) return result;
  g->state.next_in = in;
  g->state.avail_in = (uint32_t)len;
  for (;;) {
    if (g->member_done) {
      if (g->state.avail_in == 0) break;
      if (g->state.next_in[0] != 0x1f) { /* not another member: the rest is ignored */
        g->ignoring = 1;
        break;
      }
      {
        uint8_t *rest = g->state.next_in; /* init clears the input pointers */
        uint32_t left = g->state.avail_in;
        begin_member(g);
        g->state.next_in = rest;
        g->state.avail_in = left;
      }
    }
    if (!out || used == cap) {
      if (out && used > 0) { /* a full chunk: hand it over */
        napi_value u;
        if (napi_create_uint32(env, used, &u) != napi_ok || napi_set_element(env, result, n++, buf) != napi_ok ||
            napi_set_element(env, result, n++, u) != napi_ok)
          return NULL;
      }
      if (napi_create_buffer(env, chunk, (void **)&out, &buf) != napi_ok) return NULL;
      used = 0;
      cap = chunk;
    }
    {
      uint32_t before_in = g->state.avail_in;
      int ret;
      g->state.next_out = out + used;
      g->state.avail_out = cap - used;
      ret = isal_inflate(&g->state);
      used = cap - g->state.avail_out;
      if (ret < 0 || ret == ISAL_NEED_DICT) {
        napi_throw_error(env, "EGZIP", describe(ret));
        return NULL;
      }
      if (g->state.block_state == ISAL_BLOCK_FINISH) {
        g->member_done = 1;
        continue;
      }
      /* All input taken and room left in the output: isal has flushed what it could. */
      if (g->state.avail_in == 0 && g->state.avail_out > 0) break;
      if (g->state.avail_in == before_in && g->state.avail_out > 0) {
        napi_throw_error(env, "EGZIP", "gzip decoder made no progress");
        return NULL;
      }
    }
  }
  if (out && used > 0) {
    napi_value u;
    if (napi_create_uint32(env, used, &u) != napi_ok || napi_set_element(env, result, n++, buf) != napi_ok ||
        napi_set_element(env, result, n++, u) != napi_ok)
      return NULL;
  }
  return result;
}

static napi_value GunzipEnd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  size_t argc = 1;
  gunzip_t *g;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 1) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "missing arguments");
    return NULL;
  }
  if (!(g = get_handle(env, argv[0]))) return NULL;
  if (!g->member_done) napi_throw_error(env, "EGZIP", "unexpected end of gzip data");
  return NULL;
}

napi_status gunzip_register(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"gunzipOpen", NULL, GunzipOpen, NULL, NULL, NULL, napi_enumerable, NULL},
    {"gunzipPush", NULL, GunzipPush, NULL, NULL, NULL, napi_enumerable, NULL},
    {"gunzipEnd", NULL, GunzipEnd, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
#endif
