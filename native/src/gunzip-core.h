#ifndef IMAGE_TS_GUNZIP_CORE_H
#define IMAGE_TS_GUNZIP_CORE_H
/*
 * The gzip decoder without Node: member headers parsed byte by byte, deflate
 * data through isal_inflate, output into buffers the caller supplies.
 * gunzip.c wraps it for JS; fuzz/gunzip/gunzip-fuzz.c drives it directly.
 */
#include <isa-l/igzip_lib.h>
#include <stdint.h>

typedef struct {
  struct inflate_state state;
  int member_done;   /* the current member ended (trailer checked) */
  int ignoring;      /* trailing bytes after the last member */
  int hdr;           /* where the current member's header parsing is */
  uint8_t fixed[10]; /* ID1 ID2 CM FLG MTIME XFL OS */
  uint32_t fill;     /* bytes gathered for the current fixed-size field */
  uint32_t skip;     /* FEXTRA bytes still to skip */
  uint32_t hcrc;     /* CRC-32 of the header so far, for FHCRC */
  uint8_t two[2];    /* XLEN or the header CRC16 */
} gunzip_t;

/* gunzip_decode's results; failures are negative. */
#define GUNZIP_NEED_INPUT 0  /* all input is consumed (trailing bytes after the last member count as consumed) */
#define GUNZIP_NEED_OUTPUT 1 /* `out` is full, or absent: call again with a fresh buffer */

void gunzip_init(gunzip_t *g);

/*
 * Decodes from *in (*left bytes, both advanced) into out[*used, cap) (*used
 * advanced). Returns GUNZIP_NEED_INPUT or GUNZIP_NEED_OUTPUT, or a negative
 * code with *message set. Before it has output to write it returns
 * GUNZIP_NEED_OUTPUT if out is NULL, so a caller can allocate lazily; with
 * no input left it still flushes what isal holds into the room given.
 */
int gunzip_decode(gunzip_t *g, const uint8_t **in, uint32_t *left, uint8_t *out, uint32_t cap, uint32_t *used,
                  const char **message);

/* Whether the input so far ends cleanly: the last gzip member is complete. */
int gunzip_finished(const gunzip_t *g);

#endif
