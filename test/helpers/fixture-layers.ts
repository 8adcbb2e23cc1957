import type { TarEntry } from './tar-writer.js';

export const MTIME = 1_600_000_000;

/** A lower layer with every kind of entry the unpacker must keep. */
export const base: TarEntry[] = [
  { name: 'etc/', type: 'dir', mode: 0o755, mtime: MTIME },
  { name: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n', mtime: MTIME },
  { name: 'etc/group', content: 'root:x:0:\napp:x:1000:\nstaff:x:50:app\n', mtime: MTIME },
  { name: 'keep.txt', content: 'v1', mtime: MTIME },
  { name: 'gone.txt', content: 'delete me', mtime: MTIME },
  { name: 'cache/', type: 'dir', mtime: MTIME },
  { name: 'cache/old1', content: 'old', mtime: MTIME },
  { name: 'cache/old2', content: 'old', mtime: MTIME },
  { name: 'bin/', type: 'dir', mtime: MTIME },
  { name: 'bin/suid', content: '#!/bin/sh\n', mode: 0o4755, mtime: MTIME },
  { name: 'data/', type: 'dir', mtime: MTIME },
  { name: 'data/owned', content: 'mine', mode: 0o640, uid: 1234, gid: 5678, mtime: MTIME },
  { name: 'a.txt', content: 'hard', mtime: MTIME },
  { name: 'b.txt', type: 'hardlink', linkname: 'a.txt', mtime: MTIME },
  { name: 'link', type: 'symlink', linkname: 'keep.txt', mtime: MTIME },
  { name: `deep/${'n'.repeat(120)}/file-with-a-long-path`, content: 'long', mtime: MTIME },
  { name: 'xattr.txt', content: 'x', xattrs: { 'user.origin': 'image-ts' }, mtime: MTIME },
  { name: 'tmp/', type: 'dir', mode: 0o1777, mtime: MTIME },
];
/** An upper layer with a whiteout, an opaque dir and replaced files. */
export const upper: TarEntry[] = [
  { name: '.wh.gone.txt', content: '', mtime: MTIME },
  { name: 'cache/', type: 'dir', mtime: MTIME },
  { name: 'cache/.wh..wh..opq', content: '', mtime: MTIME },
  { name: 'cache/new', content: 'new', mtime: MTIME },
  { name: 'keep.txt', content: 'v2', mtime: MTIME },
  { name: 'newdir/', type: 'dir', mtime: MTIME },
  { name: 'newdir/file', content: 'n', mtime: MTIME },
];

