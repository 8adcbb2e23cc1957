import { InvalidReferenceError } from '../errors.js';
import { Reference } from './reference.js';

/** Where an image comes from: a registry reference, or a local OCI layout directory. */
export type ImageTarget =
  | { readonly kind: 'registry'; readonly reference: Reference }
  | { readonly kind: 'oci-layout'; readonly dir: string; readonly ref: string | undefined };

export const ImageTarget = {
  /** `oci:DIR[:REF]`, or a docker reference with an optional `docker://` prefix. */
  parse(input: string): ImageTarget {
    if (input.startsWith('oci:')) {
      const rest = input.slice(4);
      // A ref is whatever follows the last colon after the last slash, so paths keep their colons.
      const lastSlash = rest.lastIndexOf('/');
      const colon = rest.indexOf(':', lastSlash + 1);
      const dir = colon >= 0 ? rest.slice(0, colon) : rest;
      const ref = colon >= 0 ? rest.slice(colon + 1) : undefined;
      if (dir.length === 0) throw new InvalidReferenceError(input, 'oci: needs a directory');
      if (ref !== undefined && ref.length === 0) throw new InvalidReferenceError(input, 'empty oci layout ref');
      return { kind: 'oci-layout', dir, ref };
    }
    return { kind: 'registry', reference: Reference.parse(input) };
  },

  /** The canonical name under which the store records the image. */
  canonicalName(target: ImageTarget): string {
    return target.kind === 'registry'
      ? target.reference.toString()
      : `oci:${target.dir}${target.ref !== undefined ? `:${target.ref}` : ''}`;
  },
};
