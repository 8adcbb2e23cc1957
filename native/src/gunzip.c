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
 * Members follow one another as gzip(1) and node's zlib allow; bytes after a
 * member that do not start another one are ignored, as node's zlib does (the
 * layer digest covers them anyway). Member headers are parsed here, byte by
 * byte, so that one split across pushes anywhere (FEXTRA, FNAME, FCOMMENT,
 * FHCRC included) decodes: isal_inflate's own header parsing lost its place
 * in such headers when fed a few bytes at a time. The deflate data then goes
 * to isal_inflate in ISAL_GZIP_NO_HDR_VER mode, which checks the trailer's
 * CRC-32 and length.
 */
#ifdef HAVE_ISAL
#include <isa-l/crc.h>
#include <isa-l/igzip_lib.h>
#include <stdlib.h>
#include <string.h>
#include <node_api.h>
#include "args.h"
#include "gunzip.h"

enum { H_FIXED, H_XLEN, H_EXTRA, H_NAME, H_COMMENT, H_HCRC, H_BODY };
#define F_HCRC 0x02
#define F_EXTRA 0x04
#define F_NAME 0x08
#define F_COMMENT 0x10

typedef struct {
  struct inflate_state state;
  int member_done;   /* the current member ended (trailer checked) */
  int ignoring;      /* trailing bytes after the last member */
  int hdr;           /* where the current member's header parsing is (H_*) */
  uint8_t fixed[10]; /* ID1 ID2 CM FLG MTIME XFL OS */
  uint32_t fill;     /* bytes gathered for the current fixed-size field */
  uint32_t skip;     /* FEXTRA bytes still to skip */
  uint32_t hcrc;     /* CRC-32 of the header so far, for FHCRC */
  uint8_t two[2];    /* XLEN or the header CRC16 */
} gunzip_t;

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

static void begin_member(gunzip_t *g) {
  g->hdr = H_FIXED;
  g->fill = 0;
  g->hcrc = 0;
  g->member_done = 0;
}

/* The next header state after `from`, given the member's flags. */
static int next_field(int from, uint8_t flags) {
  if (from < H_XLEN && (flags & F_EXTRA)) return H_XLEN;
  if (from < H_NAME && (flags & F_NAME)) return H_NAME;
  if (from < H_COMMENT && (flags & F_COMMENT)) return H_COMMENT;
  if (from < H_HCRC && (flags & F_HCRC)) return H_HCRC;
  return H_BODY;
}

/*
 * Consumes header bytes from the input (advancing in and avail). Returns 1 once the header is
 * complete (the deflate data starts at *in), 0 when it needs more input, and
 * a negative ISAL_* code when the header is invalid.
 */
static int parse_header(gunzip_t *g, uint8_t **in, uint32_t *avail) {
  while (*avail > 0 && g->hdr != H_BODY) {
    uint8_t b = **in;
    int counted = g->hdr != H_HCRC; /* the header CRC covers every header byte before it */
    switch (g->hdr) {
      case H_FIXED:
        g->fixed[g->fill++] = b;
        if (g->fill == 10) {
          if (g->fixed[0] != 0x1f || g->fixed[1] != 0x8b) return ISAL_INVALID_WRAPPER;
          if (g->fixed[2] != 8) return ISAL_UNSUPPORTED_METHOD;
          if (g->fixed[3] & 0xe0) return ISAL_INVALID_WRAPPER; /* reserved flag bits */
          g->fill = 0;
          g->hdr = next_field(H_FIXED, g->fixed[3]);
        }
        break;
      case H_XLEN:
        g->two[g->fill++] = b;
        if (g->fill == 2) {
          g->skip = (uint32_t)g->two[0] | ((uint32_t)g->two[1] << 8);
          g->fill = 0;
          g->hdr = g->skip ? H_EXTRA : next_field(H_EXTRA, g->fixed[3]);
        }
        break;
      case H_EXTRA:
        if (--g->skip == 0) g->hdr = next_field(H_EXTRA, g->fixed[3]);
        break;
      case H_NAME:
      case H_COMMENT:
        if (b == 0) g->hdr = next_field(g->hdr, g->fixed[3]);
        break;
      case H_HCRC:
        g->two[g->fill++] = b;
        if (g->fill == 2) {
          if (((uint32_t)g->two[0] | ((uint32_t)g->two[1] << 8)) != (g->hcrc & 0xffff)) return ISAL_INCORRECT_CHECKSUM;
          g->hdr = H_BODY;
        }
        break;
    }
    if (counted) g->hcrc = crc32_gzip_refl(g->hcrc, &b, 1);
    (*in)++;
    (*avail)--;
  }
  if (g->hdr != H_BODY) return 0;
  isal_inflate_init(&g->state);
  g->state.crc_flag = ISAL_GZIP_NO_HDR_VER;
  return 1;
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
  uint8_t *out = NULL, *p;
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
  while (!g->ignoring) {
    if (g->member_done) {
      if (left == 0) break;
      if (p[0] != 0x1f) { /* not another member: the rest is ignored */
        g->ignoring = 1;
        break;
      }
      begin_member(g);
    }
    if (g->hdr != H_BODY) {
      int h = parse_header(g, &p, &left);
      if (h < 0) {
        napi_throw_error(env, "EGZIP", describe(h));
        return NULL;
      }
      if (h == 0) break; /* the header goes on in the next push */
    }
    if (out && used == cap) { /* a full chunk: hand it over */
      if (append_chunk(env, result, &n, buf, used)) return NULL;
      out = NULL;
      if (max_chunks && ++full == max_chunks) {
        /* isal may hold decoded bytes that did not fit: the next push, even an empty one, gets them */
        more = 1;
        break;
      }
    }
    if (!out) {
      if (napi_create_buffer(env, chunk, (void **)&out, &buf) != napi_ok) return NULL;
      used = 0;
      cap = chunk;
    }
    {
      uint32_t before_in = left;
      int ret;
      g->state.next_in = p;
      g->state.avail_in = left;
      g->state.next_out = out + used;
      g->state.avail_out = cap - used;
      ret = isal_inflate(&g->state);
      p = g->state.next_in;
      left = g->state.avail_in;
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
      if (left == 0 && g->state.avail_out > 0) break;
      if (left == before_in && g->state.avail_out > 0) {
        napi_throw_error(env, "EGZIP", "gzip decoder made no progress");
        return NULL;
      }
    }
  }
  if (g->ignoring) left = 0; /* ignored bytes count as consumed */
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
