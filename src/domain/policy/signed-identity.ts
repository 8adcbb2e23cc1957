import { Reference } from '../image/reference.js';
import type { SignedIdentity } from './policy.js';

/**
 * Whether a signature's claimed `docker-reference` satisfies a policy's
 * signedIdentity for the image the user asked for (`intended`: the logical
 * reference, as named, never a mirror). The claim is normalized the way
 * ParseNormalizedNamed does, without a default tag, so `busybox:latest`
 * equals `docker.io/library/busybox:latest` and a cosign claim like
 * `example.com/app` stays name-only. A claim that does not parse matches
 * nothing.
 */
export function identityMatches(identity: SignedIdentity, intended: Reference, signatureDockerReference: string): boolean {
  let signature: Reference;
  try {
    signature = Reference.parseNormalized(signatureDockerReference);
  } catch {
    return false;
  }
  const image = judgedReference(intended);
  switch (identity.type) {
    case 'matchExact':
      return !image.nameOnly && !signature.nameOnly && signature.toString() === image.toString();
    case 'matchRepoDigestOrExact':
      return matchRepoDigestOrExact(image, signature);
    case 'matchRepository':
      return signature.name === image.name;
    case 'exactReference':
      return !signature.nameOnly && signature.toString() === identity.reference.toString();
    case 'exactRepository':
      return signature.name === identity.repository.name;
    case 'remapIdentity': {
      const remapped = remap(image, identity.prefix, identity.signedPrefix);
      return remapped !== undefined && matchRepoDigestOrExact(remapped, signature);
    }
  }
}

/**
 * A tagged image needs a signature for exactly that tag; a digest pull
 * accepts any signature for the repository, since the signed manifest digest
 * is checked separately. A name-only claim never passes.
 */
function matchRepoDigestOrExact(image: Reference, signature: Reference): boolean {
  if (signature.nameOnly) return false;
  if (image.digest) return signature.name === image.name;
  if (image.tag !== undefined) return signature.toString() === image.toString();
  return false;
}

/**
 * The image as the policy judges it: with both a tag and a digest, the digest
 * (what is pulled; see policyIdentity).
 */
function judgedReference(intended: Reference): Reference {
  return intended.digest && intended.tag !== undefined ? intended.withDigest(intended.digest) : intended;
}

/**
 * Rewrites `prefix` to `signedPrefix` when the image's repository is `prefix`
 * or lies under `prefix/`; otherwise the image is used as is. The result must
 * already be canonical, so a short signedPrefix never matches.
 */
function remap(image: Reference, prefix: string, signedPrefix: string): Reference | undefined {
  const name = image.name;
  if (name !== prefix && !name.startsWith(`${prefix}/`)) return image;
  try {
    return Reference.parseCanonical(signedPrefix + image.toString().slice(prefix.length));
  } catch {
    return undefined;
  }
}
