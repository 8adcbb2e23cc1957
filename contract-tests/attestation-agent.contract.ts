import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { ImageTsError } from '../src/domain/errors.js';
import type { AttestationAgent, RuntimeMeasurement } from '../src/ports/keys/attestation-agent.js';

export interface AttestationAgentFixture {
  readonly agent: AttestationAgent;
  /** What the agent recorded of extendRuntimeMeasurement so far, oldest first (its event log). */
  measurements(): Promise<readonly RuntimeMeasurement[]>;
  teardown(): Promise<void>;
}

const aborted = (): AbortSignal => AbortSignal.abort(new Error('the caller gave up'));

/**
 * What image-ts relies on from an Attestation Agent: the KBS handshake's
 * TEE type and evidence, and a record of every pull.
 */
export function attestationAgentContract(name: string, make: () => Promise<AttestationAgentFixture>): void {
  describe(`AttestationAgent contract: ${name}`, () => {
    const withAgent = (fn: (f: AttestationAgentFixture) => Promise<void>) => async () => {
      const f = await make();
      try {
        await fn(f);
      } finally {
        await f.teardown();
      }
    };

    it('names its TEE, as the KBS protocol spells it', withAgent(async (f) => {
      const tee = await f.agent.getTeeType();
      assert.match(tee, /^[a-z][a-z0-9-]*$/);
    }));

    it('gives evidence bound to the runtime data: other data, other evidence', withAgent(async (f) => {
      const a = randomBytes(48);
      const b = randomBytes(48);
      const ea = await f.agent.getEvidence(a);
      const eb = await f.agent.getEvidence(b);
      assert.ok(Buffer.isBuffer(ea) && ea.length > 0);
      assert.notDeepEqual(ea, eb);
      if ((await f.agent.getTeeType()) === 'sample') {
        // The sample TEE's evidence, as Trustee's sample verifier reads it.
        const parsed = JSON.parse(ea.toString('utf8')) as { report_data?: string };
        assert.equal(parsed.report_data, a.toString('base64'));
      }
    }));

    it('records runtime measurements in order, and keeps each one whole', withAgent(async (f) => {
      const before = (await f.measurements()).length;
      const events: RuntimeMeasurement[] = [
        { domain: 'github.com/confidential-containers', operation: 'PullImage', content: '{"image":"a","digest":"sha256:1"}' },
        { domain: 'github.com/confidential-containers', operation: 'PullImage', content: '{"image":"b","digest":"sha256:2"}' },
      ];
      for (const e of events) await f.agent.extendRuntimeMeasurement(e);
      const got = (await f.measurements()).slice(before);
      assert.deepEqual(got.map((m) => [m.domain, m.operation, m.content]), events.map((m) => [m.domain, m.operation, m.content]));
    }));

    it('stops at once when the caller\'s signal is aborted, recording nothing', withAgent(async (f) => {
      const before = (await f.measurements()).length;
      await assert.rejects(f.agent.getEvidence(randomBytes(8), aborted()));
      await assert.rejects(f.agent.extendRuntimeMeasurement({ domain: 'd', operation: 'o', content: 'c' }, aborted()));
      assert.equal((await f.measurements()).length, before);
    }));

    it('a token it cannot give is refused with a stable error code', withAgent(async (f) => {
      try {
        const token = await f.agent.getToken('kbs');
        assert.ok(Buffer.isBuffer(token) && token.length > 0);
      } catch (err) {
        assert.ok(err instanceof ImageTsError, `a refusal is an ImageTsError, not ${String(err)}`);
      }
    }));
  });
}
