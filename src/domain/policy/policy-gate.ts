import { ImageTsError } from '../errors.js';
import { ImagePolicy, type PolicySubject, type PolicyVerdict } from './image-policy.js';
import type { Policy } from './policy.js';
import type { Reference } from '../image/reference.js';

/** registries.d's `use-sigstore-attachments` for a repository; undefined when it does not say. */
export type SigstoreAttachmentsLookup = (physical: Reference, signal?: AbortSignal) => Promise<boolean | undefined>;

/**
 * The admission matrix: encrypted images, signed or not, are always
 * admitted (their keys are the gate); plaintext images are admitted when
 * signed or unsigned as configured.
 */
export interface Admission {
  /** Plaintext images whose signature a policy requirement accepted. Default true. */
  readonly unencryptedSigned: boolean;
  /** Plaintext images no signature vouches for. Default true; turn off to run only encrypted or signed images. */
  readonly unencryptedUnsigned: boolean;
}

export const DEFAULT_ADMISSION: Admission = { unencryptedSigned: true, unencryptedUnsigned: true };

/**
 * What every pull passes before any layer is fetched, a store hit included:
 * the signature policy (when one is configured), then the admission matrix.
 */
export class PolicyGate {
  constructor(
    private readonly loadPolicy: (signal?: AbortSignal) => Promise<Policy | undefined>,
    private readonly evaluator: ImagePolicy,
    private readonly admission: Admission = DEFAULT_ADMISSION,
    private readonly sigstoreAttachments?: SigstoreAttachmentsLookup | undefined,
  ) {}

  /** The verdict without enforcing it, for `verify`. Undefined when no policy is configured. */
  async judge(subject: PolicySubject): Promise<PolicyVerdict | undefined> {
    const policy = await this.loadPolicy(subject.signal);
    if (!policy) return undefined;
    return this.evaluator.evaluate(policy, await this.withAttachmentsSetting(policy, subject));
  }

  /** registries.d is read only for a policy that can want sigstore signatures, and only for a registry image. */
  private async withAttachmentsSetting(policy: Policy, subject: PolicySubject): Promise<PolicySubject> {
    if (subject.sigstoreAttachments !== undefined || !subject.physical || !this.sigstoreAttachments || !wantsSigstore(policy)) return subject;
    return { ...subject, sigstoreAttachments: await this.sigstoreAttachments(subject.physical, subject.signal) };
  }

  async check(subject: PolicySubject, encrypted: boolean, what: string): Promise<PolicyVerdict | undefined> {
    const verdict = await this.judge(subject);
    if (verdict) ImagePolicy.enforce(verdict, what);
    admit(encrypted, verdict?.signed ?? false, this.admission, what);
    return verdict;
  }
}

export function admit(encrypted: boolean, signed: boolean, admission: Admission, what: string): void {
  if (encrypted) return;
  if (signed && !admission.unencryptedSigned) {
    throw new ImageTsError('UNENCRYPTED_IMAGE_REJECTED', `${what} is not encrypted; signed plaintext images are turned off (image_admission.allow_unencrypted_signed)`);
  }
  if (!signed && !admission.unencryptedUnsigned) {
    throw new ImageTsError('UNENCRYPTED_IMAGE_REJECTED', `${what} is neither encrypted nor signed; such images are turned off (image_admission.allow_unencrypted_unsigned)`);
  }
}

function wantsSigstore(policy: Policy): boolean {
  const lists = [policy.default, ...[...policy.transports.values()].flatMap((scopes) => [...scopes.values()])];
  return lists.some((requirements) => requirements.some((r) => r.type === 'sigstoreSigned'));
}
