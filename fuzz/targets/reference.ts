/**
 * Image references as users, policies and signatures give them:
 * Reference.parse, parseNormalized and parseCanonical, plus digests and
 * platforms on their own. What parses must print back to a string that
 * parses to the same reference (parse is idempotent on its own output).
 */
import { Digest } from '../../src/domain/image/digest.js';
import { Platform } from '../../src/domain/image/platform.js';
import { Reference } from '../../src/domain/image/reference.js';
import { attempt, Finding } from '../lib/verdict.js';

function roundTrip(how: string, parse: (s: string) => Reference, ref: Reference): void {
  const text = ref.toString();
  const again = attempt(() => parse(text));
  if (!again || again.toString() !== text) throw new Finding(`${how}: ${JSON.stringify(text)} does not parse back to itself`);
  if (ref.name.length === 0 || ref.registryHost.length === 0 || ref.manifestRef.length === 0) throw new Finding(`${how}: empty part in ${text}`);
}

export function fuzz(data: Buffer): void {
  const input = data.toString('utf8');
  const ref = attempt(() => Reference.parse(input));
  if (ref) roundTrip('parse', Reference.parse, ref);
  const normalized = attempt(() => Reference.parseNormalized(input));
  if (normalized) roundTrip('parseNormalized', Reference.parseNormalized, normalized);
  const canonical = attempt(() => Reference.parseCanonical(input));
  if (canonical && canonical.toString() !== input) throw new Finding(`parseCanonical accepted ${JSON.stringify(input)} as ${canonical}`);
  const digest = attempt(() => Digest.parse(input));
  if (digest && digest.toString() !== input) throw new Finding(`Digest.parse(${JSON.stringify(input)}) prints as ${digest}`);
  attempt(() => Platform.parse(input));
}
