import { NativeDecompressor } from '../src/adapters/outbound/decompress/native-decompressor.js';
import { MemoryDecompressor } from '../test/mocks/memory-decompressor.js';
import { decompressorContract } from './decompressor.contract.js';

decompressorContract('native (zlib + zstd-napi)', () => new NativeDecompressor());
decompressorContract('in-memory mock', () => new MemoryDecompressor());
