import assert from 'node:assert/strict';
import { it } from 'node:test';
import { NativeDecompressor } from '../src/adapters/outbound/decompress/native-decompressor.js';
import { SubprocessDecompressor, findSubprocessCodecs } from '../src/adapters/outbound/decompress/subprocess-decompressor.js';
import { MemoryDecompressor } from '../test/mocks/memory-decompressor.js';
import { decompressorContract } from './decompressor.contract.js';

const codecs = findSubprocessCodecs();
it('the subprocess codecs are installed (npm test installs isal and zstd)', () => {
  assert.ok(codecs.gzip, 'igzip not found: apt-get install isal');
  assert.ok(codecs.zstd, 'zstd not found: apt-get install zstd');
});

it('the addon decodes gzip with ISA-L (npm test installs libisal-dev before building it)', () => {
  assert.ok(new NativeDecompressor().hasIsal(), 'native/build has no gunzip: apt-get install libisal-dev, then npm run build:native');
});

decompressorContract('native (ISA-L + zstd-napi)', () => new NativeDecompressor());
decompressorContract('native (zlib + zstd-napi)', () => new NativeDecompressor({ isal: false }));
decompressorContract('subprocess (igzip + zstd)', () => new SubprocessDecompressor(codecs, new NativeDecompressor()));
decompressorContract('subprocess gzip (gzip -dc)', () => new SubprocessDecompressor({ gzip: { command: 'gzip', args: ['-d', '-c'] } }, new NativeDecompressor()));
decompressorContract('in-memory mock', () => new MemoryDecompressor(), { boundedOutput: false });
