#!/usr/bin/env node
import '../dist/src/adapters/inbound/cli/bin.js';
