import * as fs from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { UnsafeLayerError, asImageTsError } from '../../../domain/errors.js';
import { classifyEntry, entrySegments, linkTargetSegments, type EntryRole } from '../../../domain/layer/entry-path.js';
import type { EntryLimits } from '../../../domain/layer/unpack-limits.js';
import type { LowerLink, WhiteoutFormat } from '../../../ports/layer/layer-store.js';
import { errnoCode, nativeSyscalls, tryNativeSyscalls, type NativeSyscalls } from '../native/syscalls.js';
import { setFdTimes, setPathTimes } from '../native/times.js';
import { creationOwner, UMASK } from './creation-owner.js';
import { checkEntryLimits } from './entry-limits.js';
import { invalidTar as invalid } from './invalid-tar.js';
import { LowerLinks } from './lower-links.js';
import { longName, parsePax, type ExtendedHeader } from './pax.js';
import { fsPath } from './raw-name.js';
import { checkSparseMap, oldGnuExtension, oldGnuHeaderMap, paxSparse, SparseMapReader, SparseWriter, type SparseMap, type SparseSpec } from './sparse.js';
import { decodeHeader, numeric, TarHeaderError, type TarHeader } from './tar-header.js';

/**
 * Streaming, hardened tar extractor for one layer.
 *
 * Parsing: headers are decoded by tar-header.ts, PAX records by pax.ts, GNU
 * sparse maps by sparse.ts; framing is done here rather than by node-tar's
 * `Parser`, which sniffs gzip/zstd magic in what must be a plain tar. Like
 * Go's archive/tar (which builds nearly every layer),
 * link/symlink/device/dir/fifo entries carry no body whatever their size
 * field says. Global PAX headers ('g') are skipped, as Go's archive/tar
 * users (containerd, containers/storage, umoci) and libarchive skip them.
 * Names are bytes: one that is not UTF-8 is kept as raw-name.ts escapes
 * it and made under its own bytes.
 *
 * Syscalls are synchronous: one `_write` handles one chunk, so the event loop
 * is held only briefly, while per-file cost is several times lower than with
 * thread-pool round trips (tens of thousands of small files per layer). A
 * file whose whole body is in the chunk at hand is made by one native call
 * (create, write, owner, mode, times, close): on a small-file layer the five
 * separate fs calls per file cost more in Node than in the kernel
 * (bench/NOTES.md). File contents go straight from each chunk to the file,
 * so memory stays bounded by the stream's high-water mark whatever the file
 * sizes.
 *
 * Security: the layer directory is private staging that only this process
 * writes, so checking each parent with lstat once (then caching it) is
 * race-free for our purposes. An entry whose parent is a symlink is REFUSED
 * rather than resolved inside the root: a layer tar made by diffing a
 * filesystem records real paths and never places entries below its own
 * symlinks, and since each layer is unpacked on its own (not on top of its
 * parents), in-root resolution could not reproduce a chroot unpack anyway.
 * Final components are never followed (O_EXCL creation, unlink-and-retry on
 * EEXIST), so a later entry replaces a symlink instead of writing through it.
 *
 * Length: the format pieces live in their own modules; what is left here is
 * one state machine over the stream (header, body, next header) whose states
 * share the open file, the checked-parent cache and the limits, and splitting
 * it would pass that state between files on every entry.
 */

export type Degradation = 'ownership' | 'device' | 'xattr';

export interface UnpackOptions {
  /** An existing, empty directory that receives the tree. */
  readonly root: string;
  readonly whiteoutFormat: WhiteoutFormat;
  /** Apply owners and create device nodes (needs root). */
  readonly privileged: boolean;
  /** Called when something in the layer cannot be reproduced here and is skipped. */
  readonly onDegraded?: (what: Degradation, entry: string) => void;
  /** Injected for tests; otherwise the addon, when it is built. Required only for entries node's fs cannot make. */
  readonly native?: NativeSyscalls;
  readonly limits?: EntryLimits | undefined;
}

export interface UnpackStats {
  /** File system entries in the tar (PAX/GNU meta headers excluded). */
  readonly entries: number;
  /** Bytes of regular file content. */
  readonly bytes: number;
  /** Bytes of the tar stream itself. */
  readonly streamBytes: number;
  /** Directories no entry declared, made to hold what is below them (see CommittedLayer). */
  readonly implicitDirs?: readonly string[];
  /** Those of them that hold nothing but whiteouts and opaque markers. */
  readonly whiteoutOnlyDirs?: readonly string[];
  /** Hard links to files of lower layers, in entry order (see CommittedLayer). */
  readonly lowerLinks?: readonly LowerLink[];
}

const BLOCK = 512;
const ZERO_BLOCK = Buffer.alloc(BLOCK);
/** Same cap node-tar applies to PAX and GNU long-name bodies. */
const MAX_META_BYTES = 1024 * 1024;
/** (uid_t)-1; ids must be below it. */
const MAX_ID = 0xffffffff;
const OPAQUE_XATTR = 'trusted.overlay.opaque';
const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_RDONLY, O_DIRECTORY, S_IFCHR, S_IFBLK, S_IFIFO } = fs.constants;
const CREATE_FLAGS = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW;
const DIR_OPEN_FLAGS = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;
const FINISH_CHOWN = 1;
const FINISH_CHMOD = 2;
const EMPTY = Buffer.alloc(0);

interface EntryMeta {
  readonly name: string;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtime: number;
  readonly atime: number;
  readonly xattrs: ReadonlyMap<string, Buffer> | undefined;
}

type Body =
  | { readonly kind: 'skip' }
  | { readonly kind: 'meta'; readonly type: string; readonly chunks: Buffer[] }
  | { readonly kind: 'file'; readonly fd: number; readonly abs: string; readonly meta: EntryMeta }
  // A regular file not yet created: made in one call if its whole body arrives in one chunk.
  | { readonly kind: 'new-file'; readonly segments: readonly string[]; readonly meta: EntryMeta }
  // GNU sparse 1.0: the map opens the data; the file is made once it is read.
  | { readonly kind: 'sparse-map'; readonly reader: SparseMapReader; readonly segments: readonly string[]; readonly meta: EntryMeta; readonly realSize: number; readonly size: number }
  | { readonly kind: 'sparse'; readonly fd: number; readonly abs: string; readonly meta: EntryMeta; readonly writer: SparseWriter };

/** devmajor or devminor: read only for the device entries that use them, so a bad one is caught here, not by decodeHeader. */
function deviceNumber(block: Buffer, off: number, what: string): number {
  let n: number | undefined;
  try {
    n = numeric(block, off, 8);
  } catch (err) {
    if (err instanceof TarHeaderError) throw invalid(`bad header: ${what}: ${err.message}`);
    throw err;
  }
  // makedev takes 32-bit numbers; the addon would truncate others.
  if (n !== undefined && !(n >= 0 && n <= 0xffffffff)) throw invalid(`bad header: ${what} ${n}`);
  return n ?? 0;
}

export class TarUnpacker extends Writable {
  private state: 'header' | 'body' | 'eof' = 'header';
  private readonly headerBuf = Buffer.alloc(BLOCK);
  private headerFill = 0;
  private zeroBlocks = 0;
  private body: Body = { kind: 'skip' };
  private remaining = 0;
  private padding = 0;
  private pending: ExtendedHeader = {};
  /** An old GNU sparse entry whose map goes on in the extension blocks that follow its header. */
  private sparseExt: { readonly regions: number[]; readonly resume: () => void } | undefined;
  private entryCount = 0;
  private byteCount = 0;
  private streamCount = 0;
  /** Relative paths known to be real directories (never symlinks) right now. */
  private readonly dirs = new Set<string>(['']);
  /** Directories made for what lies below them that no entry has declared. */
  private readonly implicit = new Set<string>();
  /** Implicit directories that hold nothing but whiteouts and opaque markers. */
  private readonly holders = new Set<string>();
  /** Marker format: paths this layer deleted that nothing recreated (a marker leaves no node at the path itself). */
  private readonly gone = new Set<string>();
  /** Hard links whose targets are not in this layer, and what is left of them at the end. */
  private readonly lowerLinks: LowerLinks;
  private settledLinks: LowerLink[] | undefined;
  /** Directory mode and times, applied at the end: later entries change them and a read-only mode would block them. */
  private readonly deferred = new Map<string, { mode: number; atime: number; mtime: number }>();
  /** The addon, when it is built: regular files go through its one-call writer, else through node's fs. */
  private readonly native: NativeSyscalls | undefined;
  /** The root with a trailing slash: entry segments are already normalized, so paths are plain concatenations. */
  private readonly prefix: string;
  /**
   * The owner everything we create gets anyway, when privileged: entries
   * we have just created and that are owned by it need no chown. Undefined (always chown) when the root is
   * setgid or not in our group, since new entries could then get its group.
   * Directories we make inside are never setgid before the end (their modes
   * are deferred), so the root decides for the whole layer.
   */
  private readonly ownOwner: { readonly uid: number; readonly gid: number } | undefined;

  constructor(private readonly opts: UnpackOptions) {
    super({ highWaterMark: 256 * 1024 });
    this.native = opts.native ?? tryNativeSyscalls();
    this.prefix = join(opts.root, '/');
    this.ownOwner = opts.privileged ? creationOwner(opts.root) : undefined;
    this.lowerLinks = new LowerLinks(opts.root, opts.whiteoutFormat, () => this.syscalls());
  }

  get stats(): UnpackStats {
    const base = { entries: this.entryCount, bytes: this.byteCount, streamBytes: this.streamCount };
    const stats = this.settledLinks?.length ? { ...base, lowerLinks: this.settledLinks } : base;
    if (this.implicit.size === 0) return stats;
    return { ...stats, implicitDirs: [...this.implicit].sort(), whiteoutOnlyDirs: [...this.holders].sort() };
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.streamCount += chunk.length;
    try {
      this.consume(chunk);
    } catch (err) {
      this.closeFile();
      callback(asImageTsError(err));
      return;
    }
    callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    try {
      if (this.state === 'body' || this.headerFill !== 0 || this.sparseExt) throw invalid('archive is truncated');
      if (this.pending.path !== undefined || this.pending.linkpath !== undefined || this.pending.xattrs || this.pending.sparse) {
        throw invalid('archive ends after an extended header');
      }
      if (this.lowerLinks.size > 0) this.settledLinks = this.lowerLinks.settle();
      this.applyDeferred();
    } catch (err) {
      callback(asImageTsError(err));
      return;
    }
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.closeFile();
    callback(error);
  }

  private consume(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      if (this.state === 'eof') return; // bytes after the end-of-archive blocks are accepted and ignored
      if (this.state === 'header') {
        const n = Math.min(BLOCK - this.headerFill, chunk.length - off);
        chunk.copy(this.headerBuf, this.headerFill, off, off + n);
        this.headerFill += n;
        off += n;
        if (this.headerFill === BLOCK) {
          this.headerFill = 0;
          this.onHeader(this.headerBuf);
        }
        continue;
      }
      if (this.remaining > 0) {
        const body = this.body;
        if (body.kind === 'new-file') {
          if (this.native && body.meta.xattrs === undefined && chunk.length - off >= this.remaining) {
            const end = off + this.remaining;
            this.writeWhole(body.segments, body.meta, chunk.subarray(off, end));
            this.byteCount += this.remaining;
            this.remaining = 0;
            off = end;
            this.body = { kind: 'skip' };
            this.state = this.padding === 0 ? 'header' : 'body';
            continue;
          }
          this.body = { kind: 'file', fd: this.createFile(body.segments, body.meta), abs: this.abs(body.segments), meta: body.meta };
        }
        const n = Math.min(this.remaining, chunk.length - off);
        this.onData(chunk.subarray(off, off + n));
        this.remaining -= n;
        off += n;
        if (this.remaining === 0) this.endBody();
        continue;
      }
      const n = Math.min(this.padding, chunk.length - off);
      this.padding -= n;
      off += n;
      if (this.padding === 0) this.state = 'header';
    }
  }

  private startBody(body: Body, size: number): void {
    this.body = body;
    this.remaining = size;
    this.padding = (BLOCK - (size % BLOCK)) % BLOCK;
    if (size === 0) this.endBody();
    else this.state = 'body';
  }

  private onData(data: Buffer): void {
    const body = this.body;
    if (body.kind === 'file') {
      let done = 0;
      while (done < data.length) done += fs.writeSync(body.fd, data, done, data.length - done);
      this.byteCount += data.length;
    } else if (body.kind === 'meta') {
      body.chunks.push(Buffer.from(data)); // copy: the chunk's memory is reused upstream
    } else if (body.kind === 'sparse') {
      body.writer.write(data);
      this.byteCount += data.length;
    } else if (body.kind === 'sparse-map') {
      const used = body.reader.push(data);
      if (!body.reader.done) return;
      const map: SparseMap = { realSize: body.realSize, regions: body.reader.regions };
      checkSparseMap(map, body.size - body.reader.size);
      this.body = this.openSparse(body.segments, body.meta, map);
      if (used < data.length) this.onData(data.subarray(used));
    }
  }

  private endBody(): void {
    const body = this.body;
    this.body = { kind: 'skip' };
    if (body.kind === 'file') this.finishFile(body.fd, body.abs, body.meta);
    else if (body.kind === 'new-file') this.emptyFile(body.segments, body.meta);
    else if (body.kind === 'sparse') {
      body.writer.finish();
      this.finishFile(body.fd, body.abs, body.meta);
    } else if (body.kind === 'sparse-map') {
      throw invalid(`${JSON.stringify(body.meta.name)}: GNU sparse map is truncated`);
    } else if (body.kind === 'meta') {
      const data = Buffer.concat(body.chunks);
      if (body.type === 'x') parsePax(data, this.pending);
      else this.longName(body.type === 'L' ? 'path' : 'linkpath', longName(data));
    }
    this.state = this.padding === 0 ? 'header' : 'body';
  }

  /** A GNU long name or link: like a PAX record, an empty one leaves the header's field in force. */
  private longName(key: 'path' | 'linkpath', name: string | undefined): void {
    if (name === undefined) delete this.pending[key];
    else this.pending[key] = name;
  }

  private closeFile(): void {
    if (this.body.kind === 'file' || this.body.kind === 'sparse') {
      const fd = this.body.fd;
      this.body = { kind: 'skip' };
      try {
        fs.closeSync(fd);
      } catch {
        // already failing; the staging dir is discarded
      }
    }
  }

  private onHeader(block: Buffer): void {
    const ext = this.sparseExt;
    if (ext !== undefined) {
      if (!oldGnuExtension(block, ext.regions)) {
        this.sparseExt = undefined;
        ext.resume();
      }
      return;
    }
    if (block.equals(ZERO_BLOCK)) {
      if (++this.zeroBlocks === 2) this.state = 'eof';
      return;
    }
    if (this.zeroBlocks) throw invalid('zero block inside the archive');
    let h: TarHeader;
    try {
      h = decodeHeader(block);
    } catch (err) {
      if (err instanceof TarHeaderError) throw invalid(`bad header: ${err.message}`);
      throw err;
    }
    if (!h.checksumValid) throw invalid('header checksum mismatch');
    const flag = block[156] === 0 ? '\0' : String.fromCharCode(block[156]!);
    const pending = this.pending;
    // A pending PAX size describes the next file entry, never an intervening meta header.
    const size = flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K' ? h.size : (pending.size ?? h.size);
    if (size === undefined || !Number.isSafeInteger(size) || size < 0) throw invalid('bad entry size');

    switch (flag) {
      case 'x':
      case 'L':
      case 'K':
        if (size > MAX_META_BYTES) throw invalid(`extended header of ${size} bytes`);
        this.startBody({ kind: 'meta', type: flag, chunks: [] }, size);
        return;
      case 'g': // global PAX headers are skipped, as Go's archive/tar users and libarchive skip them
        this.startBody({ kind: 'skip' }, size);
        return;
      case '0':
      case '\0':
      case '7':
      case 'S':
      case '1':
      case '2':
      case '3':
      case '4':
      case '5':
      case '6':
        break;
      default:
        throw invalid(`unsupported entry type ${JSON.stringify(flag)}`);
    }
    this.pending = {};
    const name = pending.sparse?.name ?? pending.path ?? h.path ?? '';
    const linkpath = pending.linkpath ?? h.linkpath;
    const type = flag === '\0' && name.endsWith('/') ? '5' : flag === '\0' || flag === '7' || flag === 'S' ? '0' : flag;
    this.entryCount++;
    checkEntryLimits(this.opts.limits, this.entryCount, name, linkpath);
    const meta: EntryMeta = {
      name,
      mode: (h.mode ?? 0) & 0o7777,
      uid: pending.uid ?? h.uid ?? 0,
      gid: pending.gid ?? h.gid ?? 0,
      mtime: pending.mtime ?? h.mtime ?? 0,
      atime: pending.atime ?? pending.mtime ?? h.mtime ?? 0,
      xattrs: pending.xattrs?.size ? pending.xattrs : undefined,
    };
    // chown(2) takes 32-bit ids and reads (uid_t)-1 as "leave it": other ids (a negative base-256 one, say) cannot be applied.
    if (!(meta.uid >= 0 && meta.uid < MAX_ID && meta.gid >= 0 && meta.gid < MAX_ID)) throw invalid(`${JSON.stringify(name)}: owner ${meta.uid}:${meta.gid} is not a valid id`);
    if (!this.opts.privileged && (meta.uid !== 0 || meta.gid !== 0)) this.opts.onDegraded?.('ownership', name);
    if (flag === 'S') {
      // Old GNU: the map is in the header, and goes on in extension blocks before the data.
      const { realSize, regions, extended } = oldGnuHeaderMap(block);
      const spec: SparseSpec = { kind: 'map', map: { realSize, regions } };
      if (extended) this.sparseExt = { regions, resume: () => this.entry(type, name, linkpath, size, meta, block, spec) };
      else this.entry(type, name, linkpath, size, meta, block, spec);
      return;
    }
    // GNU.sparse.* records on anything but a regular file describe no data: such entries carry none.
    this.entry(type, name, linkpath, size, meta, block, type === '0' && pending.sparse ? paxSparse(pending.sparse) : undefined);
  }

  /** One file system entry, its headers read. `block` is the header (device numbers); `sparse` when it is a GNU sparse file. */
  private entry(type: string, name: string, linkpath: string | undefined, size: number, meta: EntryMeta, block: Buffer, sparse: SparseSpec | undefined): void {
    const role = classifyEntry(name);
    if (role.kind !== 'regular') {
      this.marker(name, role, meta);
      this.startBody({ kind: 'skip' }, type === '0' ? size : 0);
      return;
    }
    const segments = role.segments;
    if (segments.length > 0) this.ensureDirs(name, segments, segments.length - 1);
    if (segments.length === 0) {
      if (type !== '5') throw new UnsafeLayerError(name, 'entry would replace the layer root');
      this.dirMeta('', this.opts.root, meta);
      return;
    }
    switch (type) {
      case '0':
        if (sparse) this.sparseFile(segments, meta, size, sparse);
        else this.startBody({ kind: 'new-file', segments, meta }, size);
        return;
      case '5':
        this.directory(segments, meta);
        return;
      case '2':
        this.symlink(segments, linkpath, meta);
        return;
      case '1':
        this.hardlink(segments, linkpath, meta);
        return;
      default:
        this.device(segments, type, block, meta);
    }
  }

  /** A GNU sparse file: its regions are written where they belong as they stream by. */
  private sparseFile(segments: readonly string[], meta: EntryMeta, size: number, sparse: SparseSpec): void {
    if (sparse.kind === 'in-data') {
      if (size === 0) throw invalid(`${JSON.stringify(meta.name)}: GNU sparse map is truncated`);
      this.startBody({ kind: 'sparse-map', reader: new SparseMapReader(), segments, meta, realSize: sparse.realSize, size }, size);
      return;
    }
    checkSparseMap(sparse.map, size);
    this.startBody(this.openSparse(segments, meta, sparse.map), size);
  }

  private openSparse(segments: readonly string[], meta: EntryMeta, map: SparseMap): Body {
    const fd = this.createFile(segments, meta);
    return { kind: 'sparse', fd, abs: this.abs(segments), meta, writer: new SparseWriter(fd, map) };
  }

  /** The addon, for devices, whiteouts and xattrs; UNSUPPORTED when it was not built. */
  private syscalls(): NativeSyscalls {
    return this.native ?? nativeSyscalls();
  }

  private abs(segments: readonly string[]): string {
    return segments.length ? this.prefix + segments.join('/') : this.opts.root;
  }

  /**
   * Makes sure the first `count` segments are real directories inside the
   * root, creating missing ones (0755, like containers/storage). A symlink on
   * the way is refused; with `create` false, false tells of a missing one.
   * `forMarker`: the entry is a whiteout or opaque marker, which gives the
   * directories it makes no content of their own.
   */
  private ensureDirs(entry: string, segments: readonly string[], count: number, create = true, forMarker = false): boolean {
    if (count === 0) return true;
    const full = segments.slice(0, count).join('/');
    if (!this.dirs.has(full)) {
      let rel = '';
      for (let i = 0; i < count; i++) {
        rel = rel ? `${rel}/${segments[i]}` : segments[i]!;
        if (this.dirs.has(rel)) continue;
        const abs = fsPath(join(this.opts.root, rel));
        const st = fs.lstatSync(abs, { throwIfNoEntry: false });
        if (!st) {
          if (!create) return false;
          fs.mkdirSync(abs, 0o755);
          this.madeImplicit(rel, forMarker);
          this.gone.delete(rel);
        } else if (st.isSymbolicLink()) {
          throw new UnsafeLayerError(entry, `path goes through the symlink ${rel}`);
        } else if (create && this.isWhiteoutNode(st)) {
          // Deleted earlier in this layer, now holding new entries: lower layers stay hidden below it.
          fs.unlinkSync(abs);
          fs.mkdirSync(abs, 0o755);
          this.syscalls().lsetxattr(abs, OPAQUE_XATTR, Buffer.from('y'));
          this.madeImplicit(rel, forMarker);
        } else if (!st.isDirectory()) {
          throw invalid(`${JSON.stringify(entry)}: ${rel} is not a directory`);
        }
        this.dirs.add(rel);
      }
    }
    if (!forMarker && this.holders.size > 0) {
      for (let i = 1; i <= count; i++) this.holders.delete(segments.slice(0, i).join('/'));
    }
    return true;
  }

  private madeImplicit(rel: string, forMarker: boolean): void {
    this.implicit.add(rel);
    if (forMarker) this.holders.add(rel);
  }

  /** An overlay whiteout this layer made (a 0:0 char device). */
  private isWhiteoutNode(st: fs.Stats): boolean {
    return this.opts.whiteoutFormat === 'overlay' && st.isCharacterDevice() && st.rdev === 0;
  }

  /**
   * Whether the directory these segments name is, or can become, a directory
   * of this layer: no part of it is a file, a symlink or a path this layer
   * deleted. Checked before ensureDirs for markers, which are dropped instead.
   */
  private canHold(segments: readonly string[]): boolean {
    let rel = '';
    for (const seg of segments) {
      rel = rel ? `${rel}/${seg}` : seg;
      if (this.dirs.has(rel)) continue;
      if (this.gone.has(rel)) return false;
      const st = fs.lstatSync(fsPath(this.prefix + rel), { throwIfNoEntry: false });
      if (!st) return true; // nothing here or below: ensureDirs makes it
      if (!st.isDirectory()) return false;
    }
    return true;
  }

  /**
   * A whiteout or opaque marker. Below a path that this layer made a file, a
   * symlink or a deletion it has nothing to act on: that entry already hides
   * every lower path under it. It is dropped, as umoci drops it; builders
   * that replace a directory emit one for each child they delete.
   */
  private marker(name: string, role: Exclude<EntryRole, { kind: 'regular' }>, meta: EntryMeta): void {
    const dir = role.kind === 'opaque' ? role.segments : role.segments.slice(0, -1);
    if (!this.canHold(dir)) return;
    this.ensureDirs(name, dir, dir.length, true, true);
    if (this.opts.whiteoutFormat === 'overlay') {
      if (role.kind === 'opaque') this.syscalls().lsetxattr(fsPath(this.abs(dir)), OPAQUE_XATTR, Buffer.from('y'));
      else this.whiteout(role.segments);
      return;
    }
    if (role.kind === 'whiteout') {
      const rel = role.segments.join('/');
      const abs = this.abs(role.segments);
      if (this.holders.has(rel)) this.removeExisting(rel, abs);
      if (!fs.lstatSync(fsPath(abs), { throwIfNoEntry: false })) this.gone.add(rel);
    }
    // Marker format keeps `.wh.*` entries as empty regular files, whatever the tar says they are.
    const segments = entrySegments(name);
    this.finishFile(this.createFile(segments, meta), this.abs(segments), { ...meta, xattrs: undefined });
  }

  /** Removes whatever a later entry replaces, forgetting what we knew below it. */
  private removeExisting(rel: string, abs: string): void {
    const path = fsPath(abs);
    const st = fs.lstatSync(path, { throwIfNoEntry: false });
    if (!st) return;
    if (st.isDirectory()) {
      fs.rmSync(path, { recursive: true, force: true });
      const prefix = `${rel}/`;
      for (const set of [this.dirs, this.implicit, this.holders]) {
        set.delete(rel);
        for (const d of set) if (d.startsWith(prefix)) set.delete(d);
      }
      this.deferred.delete(rel);
      for (const d of this.deferred.keys()) if (d.startsWith(prefix)) this.deferred.delete(d);
    } else {
      fs.unlinkSync(path);
    }
  }

  /** Runs `create`; if the name is taken, removes the old entry and tries once more. */
  private replacing<T>(segments: readonly string[], abs: string, create: () => T): T {
    try {
      return create();
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
    }
    this.removeExisting(segments.join('/'), abs);
    return create();
  }

  /** O_EXCL|O_NOFOLLOW: a symlink already at this name is replaced, never written through. */
  private createFile(segments: readonly string[], meta: EntryMeta): number {
    const abs = this.abs(segments);
    const path = fsPath(abs);
    return this.replacing(segments, abs, () => fs.openSync(path, CREATE_FLAGS, meta.mode & 0o777));
  }

  /** What finishing a file takes: the owner when privileged; the full mode when chown (setuid, setgid) or the umask trimmed it. */
  private finishFlags(meta: EntryMeta): number {
    const chmod = meta.mode & 0o7000 || UMASK === undefined || meta.mode & UMASK;
    return (this.needsChown(meta) ? FINISH_CHOWN : 0) | (chmod ? FINISH_CHMOD : 0);
  }

  private needsChown(meta: EntryMeta): boolean {
    if (!this.opts.privileged) return false;
    const own = this.ownOwner;
    return own === undefined || meta.uid !== own.uid || meta.gid !== own.gid;
  }

  /** A whole regular file in one native call. */
  private writeWhole(segments: readonly string[], meta: EntryMeta, data: Buffer): void {
    const abs = this.abs(segments);
    const path = fsPath(abs);
    const native = this.native!;
    const flags = this.finishFlags(meta);
    this.replacing(segments, abs, () => native.writeFile(path, data, meta.mode, meta.uid, meta.gid, meta.atime, meta.mtime, flags));
  }

  private emptyFile(segments: readonly string[], meta: EntryMeta): void {
    if (this.native && meta.xattrs === undefined) this.writeWhole(segments, meta, EMPTY);
    else this.finishFile(this.createFile(segments, meta), this.abs(segments), meta);
  }

  private finishFile(fd: number, abs: string, meta: EntryMeta): void {
    const flags = this.finishFlags(meta);
    try {
      if (this.native && meta.xattrs === undefined) {
        this.native.finishFile(fd, meta.mode, meta.uid, meta.gid, meta.atime, meta.mtime, flags);
        return;
      }
      if (flags & FINISH_CHOWN) fs.fchownSync(fd, meta.uid, meta.gid);
      if (flags & FINISH_CHMOD) fs.fchmodSync(fd, meta.mode);
      this.xattrs(abs, meta);
      setFdTimes(this.native, fd, meta.atime, meta.mtime);
    } finally {
      fs.closeSync(fd);
    }
  }

  private directory(segments: readonly string[], meta: EntryMeta): void {
    const rel = segments.join('/');
    const abs = this.abs(segments);
    const path = fsPath(abs);
    if (!this.dirs.has(rel)) {
      try {
        fs.mkdirSync(path, 0o700);
      } catch (err) {
        if (errnoCode(err) !== 'EEXIST') throw err;
        const st = fs.lstatSync(path);
        if (!st.isDirectory()) {
          this.removeExisting(rel, abs);
          fs.mkdirSync(path, 0o700);
          // Deleted earlier in this layer, then made anew: what lower layers had there stays deleted.
          if (this.isWhiteoutNode(st)) this.syscalls().lsetxattr(path, OPAQUE_XATTR, Buffer.from('y'));
        }
      }
      this.dirs.add(rel);
    }
    this.implicit.delete(rel);
    this.holders.delete(rel);
    this.gone.delete(rel);
    this.dirMeta(rel, abs, meta);
  }

  private dirMeta(rel: string, abs: string, meta: EntryMeta): void {
    // Always: unlike a file, a directory may already exist with another owner from an earlier entry.
    if (this.opts.privileged) fs.lchownSync(fsPath(abs), meta.uid, meta.gid);
    this.xattrs(abs, meta);
    this.deferred.set(rel, { mode: meta.mode, atime: meta.atime, mtime: meta.mtime });
  }

  private symlink(segments: readonly string[], linkpath: string | undefined, meta: EntryMeta): void {
    if (!linkpath) throw invalid(`${JSON.stringify(meta.name)}: symlink without a target`);
    // A PAX linkpath may hold one; symlink(2) cannot, and a path with one is refused likewise (entry-path.ts).
    if (linkpath.includes('\0')) throw new UnsafeLayerError(meta.name, 'NUL in symlink target');
    const abs = this.abs(segments);
    const path = fsPath(abs);
    // The target is stored verbatim: symlinks are never followed while unpacking.
    this.replacing(segments, abs, () => fs.symlinkSync(fsPath(linkpath), path));
    if (this.needsChown(meta)) fs.lchownSync(path, meta.uid, meta.gid);
    this.xattrs(abs, meta);
    setPathTimes(this.native, path, meta.atime, meta.mtime);
  }

  private hardlink(segments: readonly string[], linkpath: string | undefined, meta: EntryMeta): void {
    if (!linkpath) throw invalid(`${JSON.stringify(meta.name)}: hard link without a target`);
    const target = linkTargetSegments(meta.name, linkpath);
    const rel = segments.join('/');
    if (target.join('/') === rel) throw new UnsafeLayerError(meta.name, 'hard link to itself');
    const targetAbs = this.abs(target);
    const abs = this.abs(segments);
    const st = this.ensureDirs(meta.name, target, target.length - 1, false) ? fs.lstatSync(fsPath(targetAbs), { throwIfNoEntry: false }) : undefined;
    if (!st) {
      // Not in this layer: a lower layer's file, linked per bundle by the snapshotter (lower-links.ts).
      this.removeExisting(rel, abs);
      this.lowerLinks.record(rel, target.join('/'));
      return;
    }
    if (st.isDirectory()) throw new UnsafeLayerError(meta.name, `hard link to the directory ${linkpath}`);
    if (this.isWhiteoutNode(st)) throw new UnsafeLayerError(meta.name, `hard link to ${linkpath}, which the layer deletes`);
    // link(2) does not follow a symlink target, so linking to a symlink stays inside.
    // The inode already has the target entry's metadata; the link entry's copy is not re-applied.
    this.replacing(segments, abs, () => fs.linkSync(fsPath(targetAbs), fsPath(abs)));
  }

  private device(segments: readonly string[], type: string, block: Buffer, meta: EntryMeta): void {
    if (type !== '6' && !this.opts.privileged) {
      this.opts.onDegraded?.('device', meta.name);
      return;
    }
    const major = deviceNumber(block, 329, 'devmajor');
    const minor = deviceNumber(block, 337, 'devminor');
    const kind = type === '3' ? S_IFCHR : type === '4' ? S_IFBLK : S_IFIFO;
    const abs = this.abs(segments);
    const path = fsPath(abs);
    const native = this.syscalls();
    this.replacing(segments, abs, () => native.mknod(path, kind | (meta.mode & 0o777), major, minor));
    if (this.needsChown(meta)) fs.lchownSync(path, meta.uid, meta.gid);
    fs.chmodSync(path, meta.mode); // a node we just made, not a symlink
    this.xattrs(abs, meta);
    setPathTimes(this.native, path, meta.atime, meta.mtime);
  }

  /**
   * Overlay whiteout: a 0:0 char device at the deleted name. A whiteout hides
   * lower layers only (OCI image spec), never what this layer wrote: an entry
   * of this layer already there stays, and a directory of this layer becomes
   * opaque (it keeps its own content and hides the lower one, as umoci
   * applies it). A directory that only held other markers goes.
   */
  private whiteout(segments: readonly string[]): void {
    const rel = segments.join('/');
    const abs = this.abs(segments);
    const path = fsPath(abs);
    const st = fs.lstatSync(path, { throwIfNoEntry: false });
    if (st?.isDirectory() && !this.holders.has(rel)) {
      this.syscalls().lsetxattr(path, OPAQUE_XATTR, Buffer.from('y'));
      return;
    }
    if (st?.isDirectory()) this.removeExisting(rel, abs);
    else if (st) return;
    this.syscalls().mknod(path, S_IFCHR, 0, 0);
  }

  /**
   * PAX xattrs. `trusted.overlay.*` from a tar is dropped: it would steer
   * overlayfs (opaque, redirect, metacopy) from inside an image. ENOTSUP is
   * tolerated for every namespace (skipped, reported once): it means this
   * filesystem cannot hold that attribute at all, and failing every layer
   * that carries e.g. a user.* attribute would make such a store unusable.
   * EPERM is tolerated too (user.* on symlinks, or no privilege); other
   * errors fail the layer. Unprivileged, only user.* is attempted.
   */
  private xattrs(abs: string, meta: EntryMeta): void {
    if (!meta.xattrs) return;
    for (const [key, value] of meta.xattrs) {
      if (key.startsWith('trusted.overlay.')) continue;
      if (!this.opts.privileged && !key.startsWith('user.')) {
        this.opts.onDegraded?.('xattr', meta.name);
        continue;
      }
      try {
        this.syscalls().lsetxattr(fsPath(abs), key, value);
      } catch (err) {
        const code = errnoCode(err);
        if (code !== 'ENOTSUP' && code !== 'EPERM') throw err;
        this.opts.onDegraded?.('xattr', meta.name);
      }
    }
  }

  /** Directory modes and times, deepest first so a read-only parent cannot get in the way. */
  private applyDeferred(): void {
    const items = [...this.deferred].sort((a, b) => b[0].split('/').length - a[0].split('/').length);
    for (const [rel, d] of items) {
      const fd = fs.openSync(fsPath(rel ? join(this.opts.root, rel) : this.opts.root), DIR_OPEN_FLAGS);
      try {
        fs.fchmodSync(fd, d.mode);
        setFdTimes(this.native, fd, d.atime, d.mtime);
      } finally {
        fs.closeSync(fd);
      }
    }
    this.deferred.clear();
  }
}
