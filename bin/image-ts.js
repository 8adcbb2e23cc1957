#!/usr/bin/env node
import { setFlagsFromString } from 'node:v8';

// undici parses HTTP with llhttp compiled to WebAssembly. V8's optimizing tier
// recompiles it in the background and exit waits for that: 200 ms and 36 MB
// of a warm pull (bench/NOTES.md). The baseline compiler is plenty for header parsing.
setFlagsFromString('--liftoff-only');
// Lets the layer pipeline scavenge every 4 MB, so chunk garbage does not pile up (bench/NOTES.md).
setFlagsFromString('--expose-gc');

// One bundled file: resolving hundreds of ESM modules would cost more than the work of a warm pull.
await import('../dist/image-ts.mjs');
