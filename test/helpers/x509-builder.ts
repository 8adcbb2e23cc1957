/**
 * X.509 certificates made in tests from node:crypto keys: CAs and
 * Fulcio-like leaves (EKU codeSigning, SAN email/host/URI, the Fulcio issuer
 * extensions), signed with ECDSA P-256/SHA-256.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { bits, bool, explicit, implicit, int, octets, oid, seq, set, time, utf8, type Der } from './der.js';

export const OID_FULCIO_ISSUER_V1 = '1.3.6.1.4.1.57264.1.1';
export const OID_FULCIO_ISSUER_V2 = '1.3.6.1.4.1.57264.1.8';
const ECDSA_SHA256 = seq(oid('1.2.840.10045.4.3.2'));

export interface KeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

export function ecKey(): KeyPair {
  return generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
}

export interface IssuedCertificate {
  readonly der: Buffer;
  readonly pem: string;
  readonly x509: X509Certificate;
  readonly key: KeyPair;
  readonly subject: Der;
  readonly subjectKeyId: Buffer;
}

export interface CertificateSpec {
  readonly commonName: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly ca?: { readonly pathLen?: number } | undefined;
  readonly key?: KeyPair | undefined;
  /** Issuer; omitted = self-signed. */
  readonly issuer?: IssuedCertificate | undefined;
  readonly emails?: readonly string[] | undefined;
  readonly hostnames?: readonly string[] | undefined;
  readonly uris?: readonly string[] | undefined;
  /** EKU codeSigning (the default for leaves); false gives EKU serverAuth instead. */
  readonly codeSigning?: boolean | undefined;
  /** Fulcio issuer extensions: v1 (raw bytes) and/or v2 (UTF8String). */
  readonly oidcIssuerV1?: string | undefined;
  readonly oidcIssuerV2?: string | undefined;
}

const name = (cn: string): Der => seq(set(seq(oid('2.5.4.10'), utf8('image-ts tests'))), set(seq(oid('2.5.4.3'), utf8(cn))));
const extension = (id: string, critical: boolean, value: Buffer): Der => seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));

export function issueCertificate(spec: CertificateSpec): IssuedCertificate {
  const key = spec.key ?? ecKey();
  const spki = key.publicKey.export({ type: 'spki', format: 'der' });
  // SKI: SHA-1 of the subjectPublicKey bits (RFC 5280 method 1); the point follows a fixed 26-byte P-256 header.
  const subjectKeyId = createHash('sha1').update(spki.subarray(spki.length - 65)).digest();
  const subject = name(spec.commonName);
  const issuerName = spec.issuer?.subject ?? subject;
  const signer = spec.issuer?.key.privateKey ?? key.privateKey;
  const authorityKeyId = spec.issuer?.subjectKeyId ?? subjectKeyId;

  const extensions: Der[] = [];
  if (spec.ca) {
    extensions.push(extension('2.5.29.19', true, seq(bool(true), ...(spec.ca.pathLen !== undefined ? [int(spec.ca.pathLen)] : []))));
    extensions.push(extension('2.5.29.15', true, bits(Buffer.from([0x06]), 1)));
  } else {
    extensions.push(extension('2.5.29.15', true, bits(Buffer.from([0x80]), 7)));
    extensions.push(extension('2.5.29.37', false, seq(oid(spec.codeSigning ?? true ? '1.3.6.1.5.5.7.3.3' : '1.3.6.1.5.5.7.3.1'))));
  }
  extensions.push(extension('2.5.29.14', false, octets(subjectKeyId)));
  extensions.push(extension('2.5.29.35', false, seq(implicit(0, authorityKeyId))));
  const names = [
    ...(spec.emails ?? []).map((e) => implicit(1, Buffer.from(e, 'latin1'))),
    ...(spec.hostnames ?? []).map((h) => implicit(2, Buffer.from(h, 'latin1'))),
    ...(spec.uris ?? []).map((u) => implicit(6, Buffer.from(u, 'latin1'))),
  ];
  if (names.length > 0) extensions.push(extension('2.5.29.17', true, seq(...names)));
  if (spec.oidcIssuerV1 !== undefined) extensions.push(extension(OID_FULCIO_ISSUER_V1, false, Buffer.from(spec.oidcIssuerV1, 'utf8')));
  if (spec.oidcIssuerV2 !== undefined) extensions.push(extension(OID_FULCIO_ISSUER_V2, false, utf8(spec.oidcIssuerV2)));

  const serial = randomBytes(16);
  serial[0] = serial[0]! & 0x7f;
  const tbs = seq(
    explicit(0, int(2)),
    int(serial),
    ECDSA_SHA256,
    issuerName,
    seq(time(spec.notBefore), time(spec.notAfter)),
    subject,
    spki,
    explicit(3, seq(...extensions)),
  );
  const signature = sign('sha256', tbs, { key: signer, dsaEncoding: 'der' });
  const der = seq(tbs, ECDSA_SHA256, bits(signature));
  const pem = toPem('CERTIFICATE', der);
  return { der, pem, x509: new X509Certificate(der), key, subject, subjectKeyId };
}

export function toPem(type: string, der: Buffer): string {
  const body = der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN ${type}-----\n${body}\n-----END ${type}-----\n`;
}
