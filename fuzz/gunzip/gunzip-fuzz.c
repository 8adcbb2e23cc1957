/*
 * libFuzzer harness for the addon's gzip decoder (native/src/gunzip-core.c),
 * built with AddressSanitizer and UBSan by scripts/fuzz.sh.
 *
 * Input: 4 parameter bytes, then the gzip stream. The stream is decoded
 * twice: in one push into one large buffer, and split into pushes at points
 * drawn from the parameters into small output buffers handed over at most
 * `max_chunks` per push, the way gunzip.c's gunzipPush and the JS decoder
 * drive it. Both must give the same bytes and the same verdict: a header or
 * a deflate block split anywhere decodes as if whole. Output is capped, so
 * that a high-ratio input costs time, not memory.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gunzip-core.h"

#define OUT_CAP (8u << 20) /* bytes of output compared; decoding stops past it */

typedef struct {
  uint8_t *data;
  size_t len;
  int failed;   /* a decode error */
  int capped;   /* stopped at OUT_CAP */
  int finished; /* gunzip_finished at the end */
} result_t;

static uint8_t whole_out[OUT_CAP];
static uint8_t split_out[OUT_CAP];

static void append(result_t *r, const uint8_t *p, uint32_t n) {
  if (r->len + n > OUT_CAP) {
    n = (uint32_t)(OUT_CAP - r->len);
    r->capped = 1;
  }
  memcpy(r->data + r->len, p, n);
  r->len += n;
}

static uint32_t next_rand(uint32_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 17;
  *s ^= *s << 5;
  return *s;
}

/*
 * One push as gunzipPush makes it: fresh `chunk`-byte buffers, at most
 * max_chunks full ones handed over (0: no limit). Returns -1 on a decode
 * error, 1 when output may be pending, else 0; *consumed says how much
 * input it took.
 */
static int push(gunzip_t *g, const uint8_t *in, uint32_t len, uint32_t chunk, uint32_t max_chunks, result_t *r,
                uint32_t *consumed) {
  const uint8_t *p = in;
  uint32_t left = len, used = 0, cap = 0, full = 0;
  uint8_t *out = NULL;
  const char *message = NULL;
  int more = 0;
  for (;;) {
    int rc = gunzip_decode(g, &p, &left, out, cap, &used, &message);
    if (rc < 0) {
      if (!message) abort(); /* every failure says why */
      free(out);
      return -1;
    }
    if (rc == GUNZIP_NEED_INPUT) break;
    if (rc != GUNZIP_NEED_OUTPUT) abort();
    if (out) {
      if (used != cap) abort(); /* asked for room with room left */
      append(r, out, used);
      free(out);
      out = NULL;
      if (max_chunks && ++full == max_chunks) {
        more = 1;
        break;
      }
    }
    out = malloc(chunk); /* exactly chunk bytes: ASan sees any write past it */
    if (!out) abort();
    used = 0;
    cap = chunk;
  }
  if (used > cap || left > len) abort();
  if (out) append(r, out, used);
  free(out);
  if (!more && left != 0) abort(); /* without `more` a push takes all its input */
  *consumed = len - left;
  return more;
}

/* What the JS decoder does with one piece of input: pushes the rest, or nothing, while output is pending. */
static int push_piece(gunzip_t *g, const uint8_t *in, uint32_t len, uint32_t chunk, uint32_t max_chunks, result_t *r) {
  for (;;) {
    uint32_t consumed = 0;
    int rc = push(g, in, len, chunk, max_chunks, r, &consumed);
    if (rc <= 0 || r->capped) return rc;
    in += consumed;
    len -= consumed;
  }
}

static void decode_whole(const uint8_t *data, uint32_t size, result_t *r) {
  gunzip_t g;
  const uint8_t *p = data;
  uint32_t left = size, used = 0;
  const char *message = NULL;
  gunzip_init(&g);
  for (;;) {
    int rc = gunzip_decode(&g, &p, &left, r->data + r->len, OUT_CAP, &used, &message);
    r->len = used;
    if (rc < 0) {
      r->failed = 1;
      return;
    }
    if (rc == GUNZIP_NEED_INPUT) break;
    /* The whole buffer is full. */
    r->capped = 1;
    return;
  }
  r->finished = gunzip_finished(&g);
}

static void decode_split(const uint8_t *data, uint32_t size, uint32_t chunk, uint32_t max_chunks, uint32_t seed, result_t *r) {
  gunzip_t g;
  uint32_t off = 0;
  gunzip_init(&g);
  do { /* an empty input still gets one (empty) push */
    uint32_t n = 1 + next_rand(&seed) % 64;
    if (n > size - off) n = size - off;
    if (push_piece(&g, data + off, n, chunk, max_chunks, r) < 0) {
      r->failed = 1;
      return;
    }
    off += n;
  } while (off < size && !r->capped);
  r->finished = gunzip_finished(&g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 4 || size > (1u << 20)) return 0;
  uint32_t chunk = 1 + (((uint32_t)data[0] << 8 | data[1]) % 4096);
  uint32_t max_chunks = data[2] % 4;
  uint32_t seed = 0x9e3779b9u ^ data[3];
  result_t whole = {whole_out, 0, 0, 0, 0};
  result_t split = {split_out, 0, 0, 0, 0};
  data += 4;
  size -= 4;
  decode_whole(data, (uint32_t)size, &whole);
  decode_split(data, (uint32_t)size, chunk, max_chunks, seed, &split);
  if (whole.capped || split.capped) return 0;
  if (whole.failed != split.failed) {
    fprintf(stderr, "whole input %s, split input %s\n", whole.failed ? "failed" : "decoded", split.failed ? "failed" : "decoded");
    abort();
  }
  if (whole.finished != split.finished) {
    fprintf(stderr, "end state differs: whole %d, split %d\n", whole.finished, split.finished);
    abort();
  }
  /* A complete stream decodes to the same bytes. A truncated one may leave a
     few decoded bytes inside isal when it ends, depending on where input
     stopped, but what both gave must agree. */
  size_t common = whole.len < split.len ? whole.len : split.len;
  if ((whole.finished && !whole.failed && whole.len != split.len) || memcmp(whole.data, split.data, common) != 0) {
    fprintf(stderr, "output differs: %zu bytes whole, %zu split\n", whole.len, split.len);
    abort();
  }
  return 0;
}
