import type { Reference } from '../image/reference.js';
import type { Policy, Requirements } from './policy.js';

/** Which requirement list applies, and under which scope the policy file holds it. */
export interface ScopeSelection {
  /** The matching scope key, `""` for the transport-wide entry, or `default`. */
  readonly scope: string;
  readonly requirements: Requirements;
}

/**
 * The requirement list for a registry image (transport `docker`): the most
 * specific scope wins outright, lists are never merged. Order: the image's
 * identity, its namespaces from narrow to wide, the transport's `""` entry,
 * then the policy default.
 */
export function requirementsFor(policy: Policy, reference: Reference, transport = 'docker'): ScopeSelection {
  const scopes = policy.transports.get(transport);
  if (scopes) {
    for (const scope of [policyIdentity(reference), ...policyNamespaces(reference), '']) {
      const requirements = scopes.get(scope);
      if (requirements) return { scope, requirements };
    }
  }
  return { scope: 'default', requirements: policy.default };
}

/**
 * `name:tag` or `name@digest`. A name-only reference gets `latest`, as the
 * docker transport tags it; with both tag and digest the digest is what gets
 * pulled (containerd drops the tag), so it is what the policy judges.
 */
export function policyIdentity(reference: Reference): string {
  if (reference.digest) return `${reference.name}@${reference.digest.toString()}`;
  return `${reference.name}:${reference.tag ?? 'latest'}`;
}

/**
 * `docker.io/library/busybox`, `docker.io/library`, `docker.io`, then for the
 * host without its port, `*.` + the host minus its first label, repeatedly:
 * `reg.a.example.com:5000` adds `*.a.example.com`, `*.example.com`, `*.com`.
 * The port-less host itself is never a namespace, and `localhost` has no
 * wildcard.
 */
export function policyNamespaces(reference: Reference): string[] {
  const namespaces: string[] = [];
  let name = reference.name;
  for (;;) {
    namespaces.push(name);
    const slash = name.lastIndexOf('/');
    if (slash < 0) break;
    name = name.slice(0, slash);
  }
  let host = reference.domain;
  const colon = host.indexOf(':');
  if (colon >= 0) host = host.slice(0, colon);
  for (let dot = host.indexOf('.'); dot >= 0; dot = host.indexOf('.')) {
    host = host.slice(dot + 1);
    namespaces.push(`*.${host}`);
  }
  return namespaces;
}
