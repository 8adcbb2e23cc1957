/**
 * policy.json (containers-policy.json(5)) through Policy.parse and its
 * strict JSON reader, the scope lookup a pull then makes, and the
 * signature payloads (simple signing, cosign, in-toto statements of
 * sigstore bundles) a policy check reads, which arrive from registries and
 * lookaside servers.
 */
import { Reference } from '../../src/domain/image/reference.js';
import { Policy } from '../../src/domain/policy/policy.js';
import { requirementsFor } from '../../src/domain/policy/policy-scope.js';
import { parseCosignPayload, parseSimpleSigningPayload } from '../../src/domain/policy/signature-payload.js';
import { parseStrictJson } from '../../src/domain/policy/strict-json.js';
import { IN_TOTO_PAYLOAD_TYPE, statementClaim } from '../../src/domain/policy/in-toto-statement.js';
import { Digest } from '../../src/domain/image/digest.js';
import { ImageTsError } from '../../src/domain/errors.js';
import { attempt, Finding } from '../lib/verdict.js';

const fail = (m: string): Error => new ImageTsError('POLICY_INVALID', m);
const STATEMENT_SUBJECT = Digest.parse(`sha256:${'ab'.repeat(32)}`);
const REFS = ['docker.io/library/busybox:latest', 'quay.io/a/b/c@sha256:' + 'ab'.repeat(32), 'localhost:5000/x:1'].map((r) => Reference.parse(r));

export function fuzz(data: Buffer): void {
  attempt(() => parseStrictJson(data, fail));
  attempt(() => parseStrictJson(data, fail, { duplicateKeys: 'keep' }));
  attempt(() => parseSimpleSigningPayload(data));
  attempt(() => parseCosignPayload(data));
  attempt(() => statementClaim(IN_TOTO_PAYLOAD_TYPE, data, STATEMENT_SUBJECT));
  const policy = attempt(() => Policy.parse(data));
  if (!policy) return;
  if (policy.default.length === 0) throw new Finding('a policy with an empty default parsed');
  for (const ref of REFS) {
    const { requirements } = requirementsFor(policy, ref);
    if (requirements.length === 0) throw new Finding(`no requirement for ${ref}`);
  }
}
