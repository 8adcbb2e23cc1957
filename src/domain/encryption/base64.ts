/**
 * ocicrypt mixes base64 flavours: annotations and Go JSON bytes are standard
 * and padded, JWE and JWK members are url-safe and unpadded. Decode either,
 * and refuse anything that is not base64 at all.
 */
export function decodeBase64(text: string): Buffer | undefined {
  const s = text.trim();
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(s)) return undefined;
  const body = s.replace(/=+$/, '');
  if (body.length % 4 === 1) return undefined;
  return Buffer.from(body.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}
