/**
 * WWW-Authenticate challenges from a registry (parseChallenges). The parser
 * promises never to throw: whatever parsed before malformed input is kept.
 * A scheme is a lowercased token; parameter names are lowercased.
 */
import { parseChallenges } from '../../src/domain/auth/challenge.js';
import { Finding } from '../lib/verdict.js';

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
}
