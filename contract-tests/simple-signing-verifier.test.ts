import { OpenPgpSimpleSigningVerifier } from '../src/adapters/outbound/signatures/openpgp-verifier.js';
import { gpgSigningFixture } from '../test/harness/signing-fixtures.js';
import { simpleSigningVerifierContract } from './simple-signing-verifier.contract.js';

simpleSigningVerifierContract('OpenPGP (gpg Ed25519 key, binary keyring)', () => gpgSigningFixture(new OpenPgpSimpleSigningVerifier(), 'ed25519', false));
simpleSigningVerifierContract('OpenPGP (gpg RSA 2048 key, armored keyring)', () => gpgSigningFixture(new OpenPgpSimpleSigningVerifier(), 'rsa2048', true));
