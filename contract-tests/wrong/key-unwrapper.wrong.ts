/**
 * Wrong on purpose: a jwe unwrapper that, to be "helpful", names the key
 * it tried in its error messages, which end up in logs.
 */
import { JweKeyUnwrapper } from '../../src/adapters/outbound/keys/unwrappers/jwe-unwrapper.js';
import type { DecryptConfig } from '../../src/domain/encryption/decrypt-config.js';
import { DecryptFailedError, ImageTsError } from '../../src/domain/errors.js';
import type { KeyUnwrapper } from '../../src/ports/keys/key-unwrapper.js';
import { jweRsaFixture } from '../../test/harness/key-unwrap-fixtures.js';
import { keyUnwrapperContract } from '../key-unwrapper.contract.js';

class ChattyUnwrapper implements KeyUnwrapper {
  readonly scheme = 'jwe';
  private readonly inner = new JweKeyUnwrapper();

  hasKeys(dc: DecryptConfig): boolean {
    return this.inner.hasKeys(dc);
  }

  async unwrap(item: Buffer, dc: DecryptConfig): Promise<Buffer | undefined> {
    try {
      return await this.inner.unwrap(item, dc);
    } catch (err) {
      if (!(err instanceof ImageTsError)) throw err;
      const tried = dc.privateKeys.map((k) => k.bytes.toString('base64')).join(', ');
      throw new DecryptFailedError(`${err.message} (tried keys: ${tried})`);
    }
  }
}

keyUnwrapperContract('wrong: an unwrapper that names the keys it tried', () => jweRsaFixture(new ChattyUnwrapper()));
