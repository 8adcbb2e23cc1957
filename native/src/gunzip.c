/*
 * gzip decompression in process with ISA-L's igzip (libisal), about four
 * times zlib's speed here. Built only where libisal's headers are found
 * (binding.gyp defines HAVE_ISAL); without them the addon has no gunzip
 * functions and image-ts runs the igzip tool or node's zlib instead.
 *
 *   gunzipOpen() -> handle
 *   gunzipPush(handle, input: Uint8Array, chunkSize, maxChunks?)
 *     -> [consumed, more, buf, used, buf, used, ...]
 *   gunzipEnd(handle)   throws unless the last gzip member ended cleanly
 *
 * gunzipPush decodes input into fresh chunkSize buffers (`used` bytes of each
 * are output). With maxChunks (0 or absent: no limit) it returns once it has
 * filled that many, so that one call's output stays bounded whatever the
 * compression ratio: `consumed` says how many input bytes it took, and `more`
 * (a boolean) that output may be pending. The caller pushes the rest of the
 * input, or an empty one when all was consumed, to go on where it stopped;
 * without `more` the input is always consumed in full.
 *
 * The decoding itself is gunzip-core.c's, which has no Node in it so that a
 * libFuzzer harness can drive it (fuzz/gunzip/gunzip-fuzz.c); this file only
 * turns arguments and results into JS values.
 */
#ifdef HAVE_ISAL
#include <stdlib.h>
#include <node_api.h>
#include "args.h"
#include "gunzip-core.h"
#include "gunzip.h"

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
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
  gunzip_t *g = malloc(sizeof *g);
  (void)info;
  if (!g) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  gunzip_init(g);
  if (napi_create_external(env, g, finalize, NULL, &handle) != napi_ok) {
    free(g);
    return NULL;
  }
  return handle;
}

/* Appends a [buffer, used] pair to the result array at *n. */
static int append_chunk(napi_env env, napi_value result, uint32_t *n, napi_value buf, uint32_t used) {
  napi_value u;
  if (napi_create_uint32(env, used, &u) != napi_ok || napi_set_element(env, result, (*n)++, buf) != napi_ok ||
      napi_set_element(env, result, (*n)++, u) != napi_ok)
    return -1;
  return 0;
}

static napi_value GunzipPush(napi_env env, napi_callback_info info) {
  napi_value argv[4], result, v, buf = NULL;
  size_t len;
  void *in;
  const uint8_t *p;
  const char *message = NULL;
  uint8_t *out = NULL;
  uint32_t chunk, max_chunks, full = 0, n = 2, used = 0, cap = 0, left;
  int more = 0;
  gunzip_t *g;
  if (get_args_between(env, info, 3, 4, argv)) return NULL;
  if (!(g = get_handle(env, argv[0]))) return NULL;
  if (get_bytes(env, argv[1], "input must be a Buffer or Uint8Array", &in, &len)) return NULL;
  if (get_u32(env, argv[2], "chunkSize must be a positive number", &chunk)) return NULL;
  if (chunk == 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "chunkSize must be a positive number");
    return NULL;
  }
  if (get_opt_u32(env, argv[3], "maxChunks must be a number", 0, &max_chunks)) return NULL;
  if (len > UINT32_MAX) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "input must be under 4 GiB");
    return NULL;
  }
  /* Slots 0 and 1 (consumed, more) are set last; filled now so that the array stays packed. */
  if (napi_create_array(env, &result) != napi_ok || napi_get_undefined(env, &v) != napi_ok ||
      napi_set_element(env, result, 0, v) != napi_ok || napi_set_element(env, result, 1, v) != napi_ok)
    return NULL;
  p = in;
  left = (uint32_t)len;
  for (;;) {
    int r = gunzip_decode(g, &p, &left, out, cap, &used, &message);
    if (r < 0) {
      napi_throw_error(env, "EGZIP", message);
      return NULL;
    }
    if (r == GUNZIP_NEED_INPUT) break;
    if (out) { /* a full chunk: hand it over */
      if (append_chunk(env, result, &n, buf, used)) return NULL;
      out = NULL;
      if (max_chunks && ++full == max_chunks) {
        /* isal may hold decoded bytes that did not fit: the next push, even an empty one, gets them */
        more = 1;
        break;
      }
    }
    if (napi_create_buffer(env, chunk, (void **)&out, &buf) != napi_ok) return NULL;
    used = 0;
    cap = chunk;
  }
  if (out && used > 0 && append_chunk(env, result, &n, buf, used)) return NULL;
  if (napi_create_uint32(env, (uint32_t)len - left, &v) != napi_ok || napi_set_element(env, result, 0, v) != napi_ok ||
      napi_get_boolean(env, more, &v) != napi_ok || napi_set_element(env, result, 1, v) != napi_ok)
    return NULL;
  return result;
}

static napi_value GunzipEnd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  gunzip_t *g;
  if (get_args(env, info, 1, argv)) return NULL;
  if (!(g = get_handle(env, argv[0]))) return NULL;
  if (!gunzip_finished(g)) napi_throw_error(env, "EGZIP", "unexpected end of gzip data");
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
