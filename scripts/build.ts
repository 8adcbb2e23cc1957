/**
 * npm run build: the CLI as one CommonJS file (dist/image-ts.cjs) that
 * bin/image-ts.js runs with a V8 code cache, and the unpack worker as an ES
 * module (dist/unpack-worker.mjs). Node 20 caches compiled code for scripts
 * only, not ES modules, and compiling the bundle was the largest single cost
 * of a warm pull (bench/NOTES.md). `buildCli` is also what tests use to build
 * the code under review into a temp dir.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type BuildOptions, type Plugin } from 'esbuild';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));

/** Serves `contents` (CommonJS) wherever undici imports a module matching `filter`. */
function replaceForUndici(name: string, filter: RegExp, contents: string): Plugin {
  return {
    name,
    setup(b) {
      b.onResolve({ filter }, (args) => (args.importer.includes('undici') ? { path: name, namespace: name } : undefined));
      b.onLoad({ filter: /.*/, namespace: name }, () => ({ contents, loader: 'js' }));
    },
  };
}

/**
 * undici's HTTP/2 client, replaced by a function that refuses. image-ts never
 * sets `allowH2`, so undici offers only http/1.1 in ALPN and never calls it;
 * but the module requires node:http2 at load, which cost 18 ms of every start
 * (bench/NOTES.md). Leaving it out also keeps HTTP/2 out of what we ship.
 */
const noHttp2 = replaceForUndici('no-http2', /[/\\]client-h2\.js$/,
  "module.exports = function connectH2 () { throw new Error('HTTP/2 is not built into image-ts') }");

/**
 * undici checks its own invariants with `assert(condition)`. node:assert
 * loads its AssertionError machinery (diffing, inspection) at start: 8 ms of
 * every run. This keeps the call and the error type it throws, and defers
 * anything else to the real module.
 */
const leanAssert = replaceForUndici('lean-assert', /^node:assert$/, `
  class AssertionError extends Error {
    constructor (message) { super(message); this.name = 'AssertionError'; this.code = 'ERR_ASSERTION' }
  }
  function assert (value, message) {
    if (!value) throw message instanceof Error ? message : new AssertionError(message === undefined ? 'undici: internal assertion failed' : String(message))
  }
  assert.ok = assert
  module.exports = new Proxy(assert, { get: (target, key) => key in target ? target[key] : require('node:assert')[key] })
`);

const common: BuildOptions = {
  absWorkingDir: ROOT,
  bundle: true,
  platform: 'node',
  target: 'node20',
  external: ['zstd-napi'],
  minify: true,
  logLevel: 'warning',
  plugins: [noHttp2, leanAssert],
};

/**
 * Packages only some commands need (pgp keys, gRPC, registries.d, registries.conf, sigstore):
 * left out of the bundle and required from node_modules on first use, so a
 * warm pull neither reads nor parses them. Loading them costs the same either
 * way (their evaluation dominates: 70-80 ms for grpc-js or openpgp, measured).
 */
const LAZY = ['openpgp', '@grpc/grpc-js', 'yaml', 'smol-toml', '@sigstore/verify', '@sigstore/bundle', '@sigstore/core'];

/** Builds into `<dir>/dist` and copies the launcher to `<dir>/bin`; warms the code cache unless told not to. */
export async function buildCli(dir: string, options: { warm?: boolean } = {}): Promise<void> {
  const dist = join(dir, 'dist');
  rmSync(dist, { recursive: true, force: true });
  await build({
    ...common,
    entryPoints: { 'image-ts': 'src/adapters/inbound/cli/bin.ts' },
    format: 'cjs',
    outdir: dist,
    outExtension: { '.js': '.cjs' },
    // Where the bundle's modules look for the worker and the native helper: beside dist/image-ts.cjs.
    define: { 'import.meta.url': '__bundleUrl' },
    banner: { js: "const __bundleUrl = require('node:url').pathToFileURL(__filename).href;" },
    external: ['zstd-napi', ...LAZY],
    // import() of those becomes require(): the launcher's require resolves them from node_modules.
    supported: { 'dynamic-import': false },
  });
  await build({
    ...common,
    entryPoints: { 'unpack-worker': 'src/adapters/outbound/layer-store/unpack-worker.ts' },
    format: 'esm',
    outdir: dist,
    outExtension: { '.js': '.mjs' },
    banner: { js: "import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);" },
  });
  if (resolve(dir) !== ROOT) {
    mkdirSync(join(dir, 'bin'), { recursive: true });
    cpSync(join(ROOT, 'bin', 'image-ts.js'), join(dir, 'bin', 'image-ts.js'));
    cpSync(join(ROOT, 'bin', 'package.json'), join(dir, 'bin', 'package.json'));
  }
  // One run writes the code cache (bin/image-ts.js does it when there is none).
  if (options.warm !== false) execFileSync(process.execPath, [join(dir, 'bin', 'image-ts.js'), '--help'], { stdio: 'ignore' });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await buildCli(ROOT);
