import { readFileSync } from 'node:fs';

/** mountinfo escapes space, tab, newline and backslash as \ooo. */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/**
 * Mount points at or below `dir` in this process's mount namespace, deepest
 * first (the order they can be unmounted in). Read from the kernel, not from
 * a record: after a kill -9 the kernel is the only one that knows.
 */
export function mountsBelow(dir: string): string[] {
  let text: string;
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const points = text.split('\n').map((line) => line.split(' ')[4]).filter((f): f is string => !!f).map(unescape);
  return [...new Set(points.filter((m) => m === dir || m.startsWith(`${dir}/`)))].sort((a, b) => b.length - a.length);
}
