/**
 * Inputs the fuzzers (fuzz/, README "Fuzzing") found to crash a parser, each
 * kept as it was found: every one must now be rejected with a typed error
 * and a stable code. The same inputs are seeds of their fuzz target
 * (fuzz/corpus/<target>/crash-*), so the smoke run replays them too.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ResourceUri } from '../../src/domain/encryption/resource-uri.js';
import { ImageTsError, type ErrorCode } from '../../src/domain/errors.js';

const code = (c: ErrorCode) => (e: unknown): boolean => e instanceof ImageTsError && e.code === c;

describe('fuzz findings', () => {
  it('key-provider: a resource URI with a malformed percent-escape is INVALID_ARGUMENT, not a URIError', () => {
    const found = Buffer.from('a2JzOi8vZXhhbXBscHJvdG90eXBlMC9va2JzKzovLy90eXBljXNpYS9ib24lPTIyRmM=', 'base64').toString('utf8');
    assert.throws(() => ResourceUri.parse(found), code('INVALID_ARGUMENT'));
    assert.throws(() => ResourceUri.parse('kbs:///default/key/%E0%A4%A'), code('INVALID_ARGUMENT'));
  });
});
