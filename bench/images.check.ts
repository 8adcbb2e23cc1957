/**
 * Builds (or finds) the bench images, prints what they are, and pulls some
 * of them end to end with the CLI from their OCI layouts.
 *
 *   node --import tsx bench/images.check.ts                       pulls small-files
 *   node --import tsx bench/images.check.ts debian-gzip small-files
 *   node --import tsx bench/images.check.ts all                   pulls all four
 *   node --import tsx bench/images.check.ts none                  only builds
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BENCH_IMAGE_NAMES, ensureBenchImages, type BenchImage } from './images.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'bin', 'image-ts.js');
const MB = 1024 * 1024;

function table(images: BenchImage[]): string {
  const rows = [
    ['image', 'layers', 'compressed MB', 'uncompressed MB', 'files'],
    ...images.map((i) => [
      i.name,
      String(i.layers.length),
      (i.layers.reduce((s, l) => s + l.size, 0) / MB).toFixed(1),
      (i.uncompressedBytes / MB).toFixed(1),
      String(i.files),
    ]),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ')).join('\n');
}

/** The CLI entry imports a built file; build when that file is not there. */
function ensureBuilt(): void {
  const bin = readFileSync(CLI, 'utf8');
  const targets = [...bin.matchAll(/import\s+['"](\.\.\/dist\/[^'"]+)['"]/g)].map((m) => resolve(dirname(CLI), m[1]!));
  const built = targets.length > 0 ? targets.every((t) => existsSync(t)) : existsSync(join(ROOT, 'dist'));
  if (built) return;
  console.log('dist/ is missing: npm run build');
  const r = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`npm run build failed (${r.status ?? r.signal})`);
}

function cli(args: string[]): number {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: 'inherit' });
  if (r.error) throw r.error;
  return r.status ?? 128;
}

function countEntries(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    n++;
    if (e.isDirectory()) n += countEntries(join(dir, e.name));
  }
  return n;
}

function pull(image: BenchImage): void {
  const tmp = mkdtempSync(join(tmpdir(), `image-ts-check-${image.name}-`));
  const bundle = join(tmp, 'bundle');
  const work = join(tmp, 'work');
  try {
    console.log(`\npull oci:${image.layout}:${image.ref}`);
    const t0 = Date.now();
    const code = cli(['pull', `oci:${image.layout}:${image.ref}`, bundle, '--work-dir', work, '--snapshotter', 'copy']);
    const seconds = (Date.now() - t0) / 1000;
    if (code !== 0) throw new Error(`pull of ${image.name} exited ${code}`);
    const rootfs = join(bundle, 'rootfs');
    if (!existsSync(rootfs)) throw new Error(`pull of ${image.name} left no ${rootfs}`);
    const entries = countEntries(rootfs);
    console.log(
      `${image.name}: pulled in ${seconds.toFixed(1)}s (${(image.uncompressedBytes / MB / seconds).toFixed(0)} MB/s of tar); rootfs holds ${entries} entries (${image.files} tar entries over ${image.layers.length} layers)`,
    );
    const rm = cli(['bundle', 'rm', bundle, '--work-dir', work]);
    if (rm !== 0) throw new Error(`bundle rm for ${image.name} exited ${rm}`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

const args = process.argv.slice(2);
const toPull = args.length === 0 ? ['small-files'] : args.includes('all') ? [...BENCH_IMAGE_NAMES] : args.filter((a) => a !== 'none');
const unknown = toPull.filter((n) => !(BENCH_IMAGE_NAMES as readonly string[]).includes(n));
if (unknown.length > 0) throw new Error(`unknown image(s) ${unknown.join(', ')}; known: ${BENCH_IMAGE_NAMES.join(', ')}, all, none`);

const t0 = Date.now();
const images = await ensureBenchImages(join(ROOT, 'bench', 'cache'), console.log);
console.log(`\nensureBenchImages took ${((Date.now() - t0) / 1000).toFixed(1)}s\n`);
console.log(table(images));
for (const image of images) console.log(`  ${image.name}: ${image.description}`);

if (toPull.length > 0) {
  ensureBuilt();
  for (const name of toPull) pull(images.find((i) => i.name === name)!);
}
console.log('\nok');
