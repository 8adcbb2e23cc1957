import { JweKeyUnwrapper } from '../src/adapters/outbound/keys/unwrappers/jwe-unwrapper.js';
import { PgpKeyUnwrapper } from '../src/adapters/outbound/keys/unwrappers/pgp-unwrapper.js';
import { Pkcs7KeyUnwrapper } from '../src/adapters/outbound/keys/unwrappers/pkcs7-unwrapper.js';
import { jweEcFixture, jweRsaFixture, pgpFixture, pkcs7Fixture } from '../test/harness/key-unwrap-fixtures.js';
import { keyUnwrapperContract } from './key-unwrapper.contract.js';

keyUnwrapperContract('jwe (RSA-OAEP, flattened JSON)', () => jweRsaFixture(new JweKeyUnwrapper()));
keyUnwrapperContract('jwe (ECDH-ES+A256KW, general JSON with two recipients)', () => jweEcFixture(new JweKeyUnwrapper()));
keyUnwrapperContract('pkcs7 (openssl certificate, RSA key transport, AES-256-GCM)', () => pkcs7Fixture(new Pkcs7KeyUnwrapper()));
keyUnwrapperContract('pgp (gpg keyrings, the held one locked by a passphrase)', () => pgpFixture(new PgpKeyUnwrapper()));
