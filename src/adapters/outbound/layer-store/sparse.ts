import * as fs from 'node:fs';
import { invalidTar } from './invalid-tar.js';
import { paxInteger, type SparseRecords } from './pax.js';
import { numeric, TarHeaderError } from './tar-header.js';

/**
 * GNU sparse files: the tar stores only a file's data regions, concatenated,
 * with a map of where each goes; the rest are holes. Four layouts exist:
 * - old GNU (type 'S'): up to four regions in the header, then 512-byte
 *   extension blocks of 21 more each while the "is extended" byte is set;
 *   the real size in the header;
 * - PAX 0.0: repeated GNU.sparse.offset / GNU.sparse.numbytes records;
 * - PAX 0.1: one GNU.sparse.map record, "offset,size,offset,size,...";
 *   both 0.x with GNU.sparse.size (the real size) and GNU.sparse.numblocks;
 * - PAX 1.0: GNU.sparse.major=1, minor=0, realsize and name; the map opens
 *   the entry's data as decimal lines (count, then offset and size for each
 *   region), padded to a 512-byte boundary, and the regions follow.
 *
 * The unpacker writes each region where it belongs as the stream passes
 * (positional writes), never holding a file, and sets the real size last,
 * so holes stay holes. A map is bounded: MAX_SPARSE_REGIONS regions, and
 * for 1.0 MAX_SPARSE_MAP_BYTES of map text. A map must be sorted, its
 * regions must not overlap or pass the real size, and they must account
 * for exactly the stored bytes; anything else is INVALID_LAYER.
 */

export const MAX_SPARSE_REGIONS = 1 << 18;
export const MAX_SPARSE_MAP_BYTES = 4 << 20;
const BLOCK = 512;
/** Old GNU: where the header's four map entries start, and the extension blocks' 21. */
const HEADER_MAP = 386;
const HEADER_ENTRIES = 4;
const HEADER_EXTENDED = 482;
const HEADER_REALSIZE = 483;
const EXTENSION_ENTRIES = 21;
const EXTENSION_EXTENDED = 504;

export interface SparseMap {
  /** The file's size, holes included. */
  readonly realSize: number;
  /** Offset and length of each stored region, flattened. */
  readonly regions: readonly number[];
}

/** Where a sparse entry's map is: known from its headers, or at the start of its data (PAX 1.0). */
export type SparseSpec = { readonly kind: 'map'; readonly map: SparseMap } | { readonly kind: 'in-data'; readonly realSize: number };

/** A number of an old GNU map: octal or base-256, and never negative; a bad one is INVALID_LAYER like the rest of the header. */
function mapNumber(block: Buffer, off: number, what: string): number | undefined {
  let n: number | undefined;
  try {
    n = numeric(block, off, 12);
  } catch (err) {
    if (err instanceof TarHeaderError) throw invalidTar(`bad old GNU sparse ${what}: ${err.message}`);
    throw err;
  }
  if (n !== undefined && n < 0) throw invalidTar(`bad old GNU sparse ${what} ${n}`);
  return n;
}

/** Reads up to `count` old GNU map entries at `off`; false once an empty one ends the map. */
function oldGnuEntries(block: Buffer, off: number, count: number, regions: number[]): boolean {
  for (let i = 0; i < count; i++, off += 24) {
    if (block[off] === 0) return false;
    const offset = mapNumber(block, off, 'offset');
    const length = mapNumber(block, off + 12, 'length');
    if (offset === undefined || length === undefined) throw invalidTar('bad old GNU sparse map entry');
    if (regions.length >= 2 * MAX_SPARSE_REGIONS) throw invalidTar(`sparse map of more than ${MAX_SPARSE_REGIONS} regions`);
    regions.push(offset, length);
  }
  return true;
}

/** The map an old GNU 'S' header holds, and whether extension blocks follow it. */
export function oldGnuHeaderMap(block: Buffer): { realSize: number; regions: number[]; extended: boolean } {
  const regions: number[] = [];
  oldGnuEntries(block, HEADER_MAP, HEADER_ENTRIES, regions);
  const realSize = mapNumber(block, HEADER_REALSIZE, 'real size');
  if (realSize === undefined) throw invalidTar('old GNU sparse header without a real size');
  return { realSize, regions, extended: block[HEADER_EXTENDED] !== 0 };
}

/** Adds an extension block's entries to `regions`; whether another block follows. */
export function oldGnuExtension(block: Buffer, regions: number[]): boolean {
  oldGnuEntries(block, 0, EXTENSION_ENTRIES, regions);
  return block[EXTENSION_EXTENDED] !== 0;
}

/** What a PAX entry's GNU.sparse.* records describe. */
export function paxSparse(records: SparseRecords): SparseSpec {
  if (records.major !== undefined || records.minor !== undefined) {
    if (records.major !== 1 || records.minor !== 0) throw invalidTar(`unknown GNU sparse format ${records.major ?? '?'}.${records.minor ?? '?'}`);
    if (records.realSize === undefined) throw invalidTar('GNU sparse 1.0 entry without GNU.sparse.realsize');
    return { kind: 'in-data', realSize: records.realSize };
  }
  if (records.realSize === undefined) throw invalidTar('GNU sparse entry without GNU.sparse.size');
  const regions = records.map ?? [];
  if (regions.length % 2 !== 0) throw invalidTar('GNU sparse map with an odd number of values');
  if (records.numBlocks !== undefined && records.numBlocks * 2 !== regions.length) {
    throw invalidTar(`GNU sparse map of ${regions.length / 2} regions, ${records.numBlocks} announced`);
  }
  return { kind: 'map', map: { realSize: records.realSize, regions } };
}

/** Throws unless the regions are sorted, disjoint, inside the real size, and add up to the stored bytes. */
export function checkSparseMap(map: SparseMap, stored: number): void {
  const { regions, realSize } = map;
  if (regions.length > 2 * MAX_SPARSE_REGIONS) throw invalidTar(`sparse map of more than ${MAX_SPARSE_REGIONS} regions`);
  if (!Number.isSafeInteger(realSize) || realSize < 0) throw invalidTar('bad sparse file size');
  let end = 0;
  let total = 0;
  for (let i = 0; i < regions.length; i += 2) {
    const offset = regions[i]!;
    const length = regions[i + 1]!;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) throw invalidTar('bad sparse map entry');
    if (offset < end) throw invalidTar('sparse map regions overlap or are out of order');
    end = offset + length;
    if (end > realSize) throw invalidTar('sparse map region past the end of the file');
    total += length;
  }
  if (total !== stored) throw invalidTar(`sparse map covers ${total} bytes, the entry stores ${stored}`);
}

/**
 * PAX 1.0: the map at the start of an entry's data, read as it streams in.
 * `push` returns how many of the bytes given belong to the map (its
 * padding included); the rest are the first regions' data.
 */
export class SparseMapReader {
  private seen = 0;
  private line = '';
  private count = -1;
  private end = -1;
  readonly regions: number[] = [];

  get done(): boolean {
    return this.end >= 0 && this.seen === this.end;
  }

  /** Bytes of data the map takes, padding included; known once done. */
  get size(): number {
    return this.end;
  }

  push(data: Buffer): number {
    let i = 0;
    while (i < data.length && !this.done) {
      if (this.end >= 0) {
        const n = Math.min(this.end - this.seen, data.length - i);
        i += n;
        this.seen += n;
        continue;
      }
      const c = data[i++]!;
      if (++this.seen > MAX_SPARSE_MAP_BYTES) throw invalidTar(`GNU sparse map over ${MAX_SPARSE_MAP_BYTES} bytes`);
      if (c !== 0x0a) {
        if (this.line.length >= 20) throw invalidTar('bad GNU sparse map');
        this.line += String.fromCharCode(c);
        continue;
      }
      const n = paxInteger(this.line, 'GNU sparse map value');
      this.line = '';
      if (this.count < 0) {
        if (n > MAX_SPARSE_REGIONS) throw invalidTar(`sparse map of more than ${MAX_SPARSE_REGIONS} regions`);
        this.count = n;
      } else {
        this.regions.push(n);
      }
      if (this.regions.length === 2 * this.count) this.end = Math.ceil(this.seen / BLOCK) * BLOCK;
    }
    return i;
  }
}

/** Writes a sparse entry's stored bytes region by region, at their offsets. */
export class SparseWriter {
  private region = 0;
  private within = 0;

  constructor(
    private readonly fd: number,
    private readonly map: SparseMap,
  ) {}

  write(data: Buffer): void {
    const regions = this.map.regions;
    let off = 0;
    while (off < data.length) {
      while (this.region < regions.length && this.within === regions[this.region + 1]) {
        this.region += 2;
        this.within = 0;
      }
      if (this.region >= regions.length) throw invalidTar('sparse file data past its map');
      const n = Math.min(regions[this.region + 1]! - this.within, data.length - off);
      let done = 0;
      while (done < n) done += fs.writeSync(this.fd, data, off + done, n - done, regions[this.region]! + this.within + done);
      this.within += n;
      off += n;
    }
  }

  /** The real size, which leaves whatever follows the last region a hole. */
  finish(): void {
    fs.ftruncateSync(this.fd, this.map.realSize);
  }
}
