#!/usr/bin/env node
// One bundled file: resolving hundreds of ESM modules would cost more than the work of a warm pull.
import '../dist/image-ts.mjs';
