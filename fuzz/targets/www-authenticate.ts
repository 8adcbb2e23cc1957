/**
 * src/domain/auth: WWW-Authenticate challenges from a registry
 * (parseChallenges), which must never throw (whatever parsed before
 * malformed input is kept; a scheme is a lowercased token, parameter names
 * are lowercased), and the credential file (parseAuthFile) with the lookup
 * a pull makes in it.
 */
import { parseChallenges } from '../../src/domain/auth/challenge.js';
import { lookupCredentials, parseAuthFile } from '../../src/domain/auth/credential-lookup.js';
import { Reference } from '../../src/domain/image/reference.js';
import { attempt, Finding } from '../lib/verdict.js';

const REFS = ['busybox', 'quay.io/org/app:1', 'localhost:5000/a/b'].map((r) => Reference.parse(r));

export function fuzz(data: Buffer): void {
  const text = data.toString('latin1');
  for (const input of [text, text.split('\n')]) {
    for (const c of parseChallenges(input)) {
      if (c.scheme === '' || c.scheme !== c.scheme.toLowerCase() || /[\s,=]/.test(c.scheme)) throw new Finding(`scheme ${JSON.stringify(c.scheme)}`);
      if (Object.getPrototypeOf(c.params) !== null) throw new Finding('params has a prototype');
      for (const [k, v] of Object.entries(c.params)) {
        if (k !== k.toLowerCase() || typeof v !== 'string') throw new Finding(`param ${JSON.stringify(k)}`);
      }
    }
  }
  const file = attempt(() => parseAuthFile(data.toString('utf8'), 'auth.json'));
  if (file) for (const ref of REFS) attempt(() => lookupCredentials(file, ref));
}
