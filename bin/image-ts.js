#!/usr/bin/env node
'use strict';
// CommonJS (bin/package.json), so that starting the CLI does not start node's
// ES module loader too: 10 ms of every run (bench/NOTES.md).
const { readFileSync, renameSync, writeFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const { dirname, join } = require('node:path');
const { setFlagsFromString } = require('node:v8');
const { Script, constants } = require('node:vm');

// undici parses HTTP with llhttp compiled to WebAssembly. V8's optimizing tier
// recompiles it in the background and exit waits for that: 200 ms and 36 MB
// of a warm pull (bench/NOTES.md). The baseline compiler is plenty for header parsing.
setFlagsFromString('--liftoff-only');
// Lets the layer pipeline scavenge every 4 MB, so chunk garbage does not pile up (bench/NOTES.md).
setFlagsFromString('--expose-gc');

// One bundled CommonJS file, run from V8's code cache: parsing and compiling
// the bundle was the largest single cost of a warm pull, and Node 20 caches
// compiled code for scripts only (bench/NOTES.md).
const file = join(__dirname, '..', 'dist', 'image-ts.cjs');
// V8 rejects a cache made by another version; the name keeps one per Node version.
const cacheFile = `${file}.${process.version}.cache`;
let cachedData;
try {
  cachedData = readFileSync(cacheFile);
} catch {
  cachedData = undefined;
}
const script = new Script(`(function (exports, require, module, __filename, __dirname) {${readFileSync(file, 'utf8')}\n})`, {
  filename: file,
  cachedData,
  importModuleDynamically: constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
});
if (cachedData === undefined || script.cachedDataRejected) {
  // Written once, where dist/ is writable (the build does it), after the run so
  // that the functions it compiled are in the cache. A failure only costs speed.
  process.once('exit', () => {
    try {
      const tmp = `${cacheFile}.${process.pid}`;
      writeFileSync(tmp, script.createCachedData());
      renameSync(tmp, cacheFile);
    } catch {
      // read-only install: run without a cache
    }
  });
}
const bundle = { exports: {} };
script.runInThisContext()(bundle.exports, createRequire(file), bundle, file, dirname(file));
