import { UnsafeLayerError } from '../errors.js';

/**
 * Turns a tar entry name into path segments relative to the layer root.
 * A leading `/` is dropped (entries are rooted at the layer, as in
 * containers/image); `..` that would climb above the root is refused; empty
 * and `.` segments vanish. The root itself is the empty list.
 */
export function entrySegments(name: string): string[] {
  if (name.includes('\0')) throw new UnsafeLayerError(name, 'NUL in path');
  const out: string[] = [];
  for (const seg of name.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (out.length === 0) throw new UnsafeLayerError(name, 'path climbs out of the layer');
      out.pop();
      continue;
    }
    out.push(seg);
  }
  return out;
}

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';

/** What an entry means for the union of layers (OCI image-layer spec, "Whiteouts"). */
export type EntryRole =
  | { readonly kind: 'regular'; readonly segments: readonly string[] }
  | { readonly kind: 'whiteout'; readonly segments: readonly string[] } // the path that is deleted
  | { readonly kind: 'opaque'; readonly segments: readonly string[] }; // the directory whose lower content is hidden

export function classifyEntry(name: string): EntryRole {
  const segments = entrySegments(name);
  const base = segments[segments.length - 1];
  if (base === OPAQUE_MARKER) return { kind: 'opaque', segments: segments.slice(0, -1) };
  if (base !== undefined && base.startsWith(WHITEOUT_PREFIX)) {
    const target = base.slice(WHITEOUT_PREFIX.length);
    if (target === '' || target === '.' || target === '..' || target.startsWith(WHITEOUT_PREFIX)) {
      throw new UnsafeLayerError(name, 'malformed whiteout');
    }
    return { kind: 'whiteout', segments: [...segments.slice(0, -1), target] };
  }
  return { kind: 'regular', segments };
}

/**
 * Where a hard link points. Absolute targets are re-anchored at the layer
 * root (image-rs does the same); a target that climbs out is refused.
 */
export function linkTargetSegments(entryName: string, linkpath: string): string[] {
  const segs = entrySegments(linkpath);
  if (segs.length === 0) throw new UnsafeLayerError(entryName, `hard link to the layer root`);
  return segs;
}
