/*
 * gzip decoding with ISA-L's igzip (libisal), without Node (gunzip-core.h).
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
#include <string.h>
#include "gunzip-core.h"

enum { H_FIXED, H_XLEN, H_EXTRA, H_NAME, H_COMMENT, H_HCRC, H_BODY };
#define F_HCRC 0x02
#define F_EXTRA 0x04
#define F_NAME 0x08
#define F_COMMENT 0x10

static void begin_member(gunzip_t *g) {
  g->hdr = H_FIXED;
  g->fill = 0;
  g->hcrc = 0;
  g->member_done = 0;
}

void gunzip_init(gunzip_t *g) {
  memset(g, 0, sizeof *g);
  begin_member(g);
}

int gunzip_finished(const gunzip_t *g) {
  return g->member_done;
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
static int parse_header(gunzip_t *g, const uint8_t **in, uint32_t *avail) {
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

int gunzip_decode(gunzip_t *g, const uint8_t **in, uint32_t *left, uint8_t *out, uint32_t cap, uint32_t *used,
                  const char **message) {
  while (!g->ignoring) {
    if (g->member_done) {
      if (*left == 0) break;
      if (**in != 0x1f) { /* not another member: the rest is ignored */
        g->ignoring = 1;
        break;
      }
      begin_member(g);
    }
    if (g->hdr != H_BODY) {
      int h = parse_header(g, in, left);
      if (h < 0) {
        *message = describe(h);
        return h;
      }
      if (h == 0) break; /* the header goes on in the next push */
    }
    if (!out || *used == cap) return GUNZIP_NEED_OUTPUT;
    {
      uint32_t before_in = *left;
      int ret;
      g->state.next_in = (uint8_t *)*in; /* isal only reads it */
      g->state.avail_in = *left;
      g->state.next_out = out + *used;
      g->state.avail_out = cap - *used;
      ret = isal_inflate(&g->state);
      *in = g->state.next_in;
      *left = g->state.avail_in;
      *used = cap - g->state.avail_out;
      if (ret < 0 || ret == ISAL_NEED_DICT) {
        *message = describe(ret);
        return ret < 0 ? ret : ISAL_INVALID_BLOCK;
      }
      if (g->state.block_state == ISAL_BLOCK_FINISH) {
        g->member_done = 1;
        continue;
      }
      /* All input taken and room left in the output: isal has flushed what it could. */
      if (*left == 0 && g->state.avail_out > 0) break;
      if (*left == before_in && g->state.avail_out > 0) {
        *message = "gzip decoder made no progress";
        return ISAL_INVALID_BLOCK;
      }
    }
  }
  if (g->ignoring) *left = 0; /* ignored bytes count as consumed */
  return GUNZIP_NEED_INPUT;
}
#endif
