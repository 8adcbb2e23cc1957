import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ImageTsError, PolicyInvalidError, SignatureInvalidError } from '../../src/domain/errors.js';
import { Reference } from '../../src/domain/image/reference.js';
import { Policy, type Requirement, type SignedIdentity } from '../../src/domain/policy/policy.js';
import { policyIdentity, policyNamespaces, requirementsFor } from '../../src/domain/policy/policy-scope.js';
import { identityMatches } from '../../src/domain/policy/signed-identity.js';
import { parseCosignPayload, parseSimpleSigningPayload } from '../../src/domain/policy/signature-payload.js';
import { JsonObject, decodeGoBase64, parseStrictJson } from '../../src/domain/policy/strict-json.js';

const HEX = 'a'.repeat(64);
const HEX2 = 'b'.repeat(64);
const PEM = '-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n';
const ANY = '[{"type":"insecureAcceptAnything"}]';

/** A policy whose default is `req` (one requirement object, as JSON text). */
const withDefault = (req: string): string => `{"default":[${req}]}`;
const withTransports = (transports: string): string => `{"default":${ANY},"transports":${transports}}`;
const signedBy = (fields: string): string => withDefault(`{"type":"signedBy",${fields}}`);
const sigstore = (fields: string): string => withDefault(`{"type":"sigstoreSigned",${fields}}`);
const identity = (si: string): string => signedBy(`"keyType":"GPGKeys","keyPath":"/k","signedIdentity":${si}`);

describe('Reference.parseNormalized and parseCanonical (no default tag)', () => {
  it('keeps name-only references name-only', () => {
    const r = Reference.parseNormalized('busybox');
    assert.equal(r.nameOnly, true);
    assert.equal(r.toString(), 'docker.io/library/busybox');
    assert.equal(Reference.parse('busybox').toString(), 'docker.io/library/busybox:latest');
    assert.equal(Reference.parseNormalized('index.docker.io/library/busybox:1').toString(), 'docker.io/library/busybox:1');
    assert.equal(Reference.parseNormalized(`quay.io/a/b@sha256:${HEX}`).nameOnly, false);
  });
  it('refuses a transport prefix', () => {
    assert.throws(() => Reference.parseNormalized('docker://busybox'), ImageTsError);
  });
  it('parseCanonical wants the fully expanded form', () => {
    assert.equal(Reference.parseCanonical('docker.io/library/busybox:1').toString(), 'docker.io/library/busybox:1');
    assert.equal(Reference.parseCanonical('quay.io/a').nameOnly, true);
    for (const s of ['busybox:1', 'library/busybox', 'index.docker.io/library/busybox', 'docker.io/busybox']) {
      assert.throws(() => Reference.parseCanonical(s), /must be canonical/, s);
    }
  });
});

describe('Policy.parse rejects, with containers/image messages', () => {
  const cases: [string, string, string | RegExp][] = [
    // top level (§1.1)
    ['missing default', '{}', 'Default policy is missing'],
    ['transports only', withTransports('{}').replace(`"default":${ANY},`, ''), 'Default policy is missing'],
    ['empty default', '{"default":[]}', 'List of verification policy requirements must not be empty'],
    ['null default', '{"default":null}', 'List of verification policy requirements must not be empty'],
    ['default not a list', '{"default":{}}', 'json: cannot unmarshal object into Go value of type []json.RawMessage'],
    ['duplicate default', `{"default":${ANY},"default":${ANY}}`, 'Duplicate key "default"'],
    ['unknown top-level key', `{"default":${ANY},"other":1}`, 'Unknown key "other"'],
    ['keys are case-sensitive', `{"Default":${ANY}}`, 'Unknown key "Default"'],
    ['errors in document order (list first)', '{"default":[],"other":1}', 'List of verification policy requirements must not be empty'],
    ['errors in document order (key first)', '{"other":1,"default":[]}', 'Unknown key "other"'],
    ['not an object', '[]', 'JSON object expected, got "["'],
    ['trailing data', `{"default":${ANY}} x`, /^invalid character 'x' after top-level value/],
    ['second document', `{"default":${ANY}}{}`, /^invalid character '\{' after top-level value/],
    ['truncated', '{"default":[', 'unexpected end of JSON input'],
    ['trailing comma', '{"default":[{"type":"reject"},]}', /^invalid character '\]' looking for beginning of value/],
    // transports and scopes
    ['transports not an object', withTransports('[]'), 'JSON object expected, got "["'],
    ['transports null', withTransports('null'), 'JSON object expected, got "%!s(<nil>)"'],
    ['duplicate transport', withTransports('{"docker":{},"docker":{}}'), 'Duplicate key "docker"'],
    ['duplicate scope', withTransports(`{"docker":{"a":${ANY},"a":${ANY}}}`), 'Duplicate key "a"'],
    ['empty scope list', withTransports('{"docker":{"docker.io":[]}}'), 'List of verification policy requirements must not be empty'],
    ['scope list not an array', withTransports('{"docker":{"docker.io":{}}}'), 'json: cannot unmarshal object into Go value of type []json.RawMessage'],
    ['dir scope not absolute', withTransports(`{"dir":{"relative/path":${ANY}}}`), 'Unknown key "relative/path"'],
    ['dir scope "/"', withTransports(`{"dir":{"/":${ANY}}}`), 'Unknown key "/"'],
    ['dir scope not clean', withTransports(`{"dir":{"/a/../b":${ANY}}}`), 'Unknown key "/a/../b"'],
    ['oci scope trailing slash', withTransports(`{"oci":{"/a/":${ANY}}}`), 'Unknown key "/a/"'],
    ['sif scope not absolute', withTransports(`{"sif":{"img.sif":${ANY}}}`), 'Unknown key "img.sif"'],
    ['containers-storage scope without a store', withTransports(`{"containers-storage":{"busybox":${ANY}}}`), 'Unknown key "busybox"'],
    ['containers-storage relative root', withTransports(`{"containers-storage":{"[overlay@rel]":${ANY}}}`), 'Unknown key "[overlay@rel]"'],
    ['docker-archive takes no scopes', withTransports(`{"docker-archive":{"/x":${ANY}}}`), 'Unknown key "/x"'],
    // requirement objects (§1.3)
    ['unknown requirement type', withDefault('{"type":"foo"}'), 'Unknown policy requirement type "foo"'],
    ['missing requirement type', withDefault('{}'), 'Unknown policy requirement type ""'],
    ['null requirement', withDefault('null'), 'Unknown policy requirement type ""'],
    ['requirement not an object', withDefault('"reject"'), 'json: cannot unmarshal string into Go value of type signature.prCommon'],
    ['type not a string', withDefault('{"type":1}'), 'json: cannot unmarshal number into Go struct field prCommon.type of type signature.prTypeIdentifier'],
    ['extra key on reject', withDefault('{"type":"reject","extra":1}'), 'Unknown key "extra"'],
    ['extra key on insecureAcceptAnything', withDefault('{"type":"insecureAcceptAnything","keyPath":"/k"}'), 'Unknown key "keyPath"'],
    ['duplicate type', withDefault('{"type":"reject","type":"reject"}'), 'Duplicate key "type"'],
    ['type key in another case', withDefault('{"type":"reject","TYPE":"reject"}'), 'Unknown key "TYPE"'],
    ['signedBy without keyType', signedBy('"keyPath":"/k"'), 'invalid keyType ""'],
    ['signedBy with a bad keyType', signedBy('"keyType":"PGP","keyPath":"/k"'), 'Unrecognized keyType value "PGP"'],
    ['signedBy keyType not a string', signedBy('"keyType":1,"keyPath":"/k"'), 'json: cannot unmarshal number into Go value of type string'],
    ['signedBy without keys', signedBy('"keyType":"GPGKeys"'), 'Exactly one of keyPath, keyPaths and keyData must be specified, none of them present'],
    ['signedBy with two key sources', signedBy('"keyType":"GPGKeys","keyPath":"/k","keyData":"QUJD"'), 'Exactly one of keyPath, keyPaths and keyData must be specified, more than one present'],
    ['signedBy with an empty keyPath', signedBy('"keyType":"GPGKeys","keyPath":""'), 'exactly one of keyPath, keyPaths and keyData must be specified'],
    ['signedBy with a null keyPaths', signedBy('"keyType":"GPGKeys","keyPaths":null'), 'exactly one of keyPath, keyPaths and keyData must be specified'],
    ['signedBy keyPaths not a list', signedBy('"keyType":"GPGKeys","keyPaths":"/k"'), 'json: cannot unmarshal string into Go value of type []string'],
    ['signedBy keyPaths element not a string', signedBy('"keyType":"GPGKeys","keyPaths":[1]'), 'json: cannot unmarshal number into Go value of type string'],
    ['signedBy keyData not a string', signedBy('"keyType":"GPGKeys","keyData":5'), 'json: cannot unmarshal number into Go value of type []uint8'],
    ['signedBy has no keyDatas', signedBy('"keyType":"GPGKeys","keyDatas":["QUJD"]'), 'Unknown key "keyDatas"'],
    ['signedBy keyData raw PEM (base64 only here)', signedBy(`"keyType":"GPGKeys","keyData":${JSON.stringify(PEM)}`), 'illegal base64 data at input byte 0'],
    ['base64 not base64', signedBy('"keyType":"GPGKeys","keyData":"!!!!"'), 'illegal base64 data at input byte 0'],
    ['base64 without padding', signedBy('"keyType":"GPGKeys","keyData":"QUI"'), 'illegal base64 data at input byte 0'],
    ['base64 stray padding', signedBy('"keyType":"GPGKeys","keyData":"QUJD="'), 'illegal base64 data at input byte 4'],
    ['base64 half padding', signedBy('"keyType":"GPGKeys","keyData":"QQ=x"'), 'illegal base64 data at input byte 2'],
    ['base64 data after padding', signedBy('"keyType":"GPGKeys","keyData":"QQ==QQ=="'), 'illegal base64 data at input byte 4'],
    ['base64 url alphabet', signedBy('"keyType":"GPGKeys","keyData":"QQ-_"'), 'illegal base64 data at input byte 2'],
    ['sigstoreSigned has no keyType', sigstore('"keyType":"GPGKeys","keyPath":"/k"'), 'Unknown key "keyType"'],
    ['sigstoreSigned without keys', sigstore('"signedIdentity":{"type":"matchRepository"}'), 'exactly one of keyPath, keyPaths, keyData, keyDatas, fulcio, and pki must be specified'],
    ['sigstoreSigned with two key sources', sigstore(`"keyPath":"/k","keyData":${JSON.stringify(PEM)}`), 'exactly one of keyPath, keyPaths, keyData, keyDatas, fulcio, and pki must be specified'],
    ['sigstoreSigned empty keyPaths', sigstore('"keyPaths":[]'), '"keyPaths" contains no entries'],
    ['sigstoreSigned empty keyDatas', sigstore('"keyDatas":[]'), '"keyDatas" contains no entries'],
    ['sigstoreSigned empty rekor paths', sigstore('"keyPath":"/k","rekorPublicKeyPaths":[]'), '"rekorPublickeyPaths" contains no entries'],
    ['sigstoreSigned two rekor sources', sigstore('"keyPath":"/k","rekorPublicKeyPath":"/r","rekorPublicKeyData":"QUJD"'),
      'at most one of rekorPublickeyPath, rekorPublicKeyPaths, rekorPublickeyData and rekorPublicKeyDatas can be used simultaneously'],
    ['sigstoreSigned bad keyData', sigstore('"keyData":"not base64"'), 'illegal base64 data at input byte 3'],
    ['sigstoreSigned bad rekor data', sigstore('"keyPath":"/k","rekorPublicKeyData":"QUI"'), 'illegal base64 data at input byte 0'],
    ['fulcio without rekor', sigstore('"fulcio":{"caPath":"/ca","oidcIssuer":"https://i","subjectEmail":"a@b"}'),
      'At least one of rekorPublickeyPath, rekorPublicKeyPaths, rekorPublickeyData and rekorPublicKeyDatas must be specified if fulcio is used'],
    ['fulcio without CA', sigstore('"fulcio":{"oidcIssuer":"https://i","subjectEmail":"a@b"},"rekorPublicKeyPath":"/r"'), 'At least one of caPath and caData must be specified'],
    ['fulcio with two CAs', sigstore('"fulcio":{"caPath":"/ca","caData":"QUJD","oidcIssuer":"https://i","subjectEmail":"a@b"}'), 'caPath and caData cannot be used simultaneously'],
    ['fulcio without issuer', sigstore('"fulcio":{"caPath":"/ca","subjectEmail":"a@b"}'), 'oidcIssuer not specified'],
    ['fulcio without email', sigstore('"fulcio":{"caPath":"/ca","oidcIssuer":"https://i"}'), 'subjectEmail not specified'],
    ['fulcio unknown key', sigstore('"fulcio":{"caPath":"/ca","oidcIssuer":"https://i","subjectEmail":"a@b","x":1}'), 'Unknown key "x"'],
    ['fulcio not an object', sigstore('"fulcio":"x"'), 'JSON object expected, got "x"'],
    ['pki with rekor', sigstore('"pki":{"caRootsPath":"/r","subjectEmail":"a@b"},"rekorPublicKeyPath":"/r"'),
      'rekorPublickeyPath, rekorPublicKeyPaths, rekorPublickeyData and rekorPublicKeyDatas are not supported for pki'],
    ['pki without roots', sigstore('"pki":{"subjectEmail":"a@b"}'), 'At least one of caRootsPath and caRootsData must be specified'],
    ['pki with two roots', sigstore('"pki":{"caRootsPath":"/r","caRootsData":"QUJD","subjectEmail":"a@b"}'), 'caRootsPath and caRootsData cannot be used simultaneously'],
    ['pki with two intermediates', sigstore('"pki":{"caRootsPath":"/r","caIntermediatesPath":"/i","caIntermediatesData":"QUJD","subjectEmail":"a@b"}'),
      'caIntermediatesPath and caIntermediatesData cannot be used simultaneously'],
    ['pki without subject', sigstore('"pki":{"caRootsPath":"/r"}'), 'At least one of subjectEmail, subjectHostname must be specified'],
    ['signedBaseLayer without identity', withDefault('{"type":"signedBaseLayer"}'), 'Key "baseLayerIdentity" missing in a JSON object'],
    ['signedBaseLayer extra key', withDefault('{"type":"signedBaseLayer","baseLayerIdentity":{"type":"matchExact"},"x":1}'), 'Unknown key "x"'],
    // signedIdentity (§1.4)
    ['unknown identity type', identity('{"type":"matchAnything"}'), 'Unknown policy reference match type "matchAnything"'],
    ['null identity', identity('null'), 'Unknown policy reference match type ""'],
    ['identity not an object', identity('[]'), 'json: cannot unmarshal array into Go value of type signature.prmCommon'],
    ['identity extra key', identity('{"type":"matchExact","dockerReference":"busybox:latest"}'), 'Unknown key "dockerReference"'],
    ['identity duplicate key', identity('{"type":"matchRepository","type":"matchRepository"}'), 'Duplicate key "type"'],
    ['exactReference without reference', identity('{"type":"exactReference"}'), 'Key "dockerReference" missing in a JSON object'],
    ['exactReference name-only', identity('{"type":"exactReference","dockerReference":"busybox"}'), 'dockerReference busybox contains neither a tag nor digest'],
    ['exactReference unparsable', identity('{"type":"exactReference","dockerReference":"UPPER/x:1"}'), /^Invalid format of dockerReference UPPER\/x:1: /],
    ['exactRepository unparsable', identity('{"type":"exactRepository","dockerRepository":"a b"}'), /^Invalid format of dockerRepository a b: /],
    ['exactRepository extra key', identity('{"type":"exactRepository","dockerRepository":"busybox","dockerReference":"x"}'), 'Unknown key "dockerReference"'],
    ['remapIdentity without signedPrefix', identity('{"type":"remapIdentity","prefix":"example.com"}'), 'Key "signedPrefix" missing in a JSON object'],
    ['remapIdentity prefix with tag', identity('{"type":"remapIdentity","prefix":"example.com/ns:tag","signedPrefix":"quay.io"}'), 'prefix "example.com/ns:tag" is not valid'],
    ['remapIdentity empty signedPrefix', identity('{"type":"remapIdentity","prefix":"example.com","signedPrefix":""}'), 'prefix "" is not valid'],
    ['remapIdentity prefix with digest', identity(`{"type":"remapIdentity","prefix":"example.com/a@sha256:${HEX}","signedPrefix":"quay.io"}`), `prefix "example.com/a@sha256:${HEX}" is not valid`],
    ['identity errors before key errors', signedBy('"keyType":"GPGKeys","signedIdentity":{"type":"x"}'), 'Unknown policy reference match type "x"'],
  ];
  for (const [name, text, expected] of cases) {
    it(name, () => {
      assert.throws(
        () => Policy.parse(text),
        (e: unknown) => {
          assert.ok(e instanceof PolicyInvalidError, `not a PolicyInvalidError: ${String(e)}`);
          assert.equal(e.code, 'POLICY_INVALID');
          if (typeof expected === 'string') assert.equal(e.message, expected);
          else assert.match(e.message, expected);
          return true;
        },
      );
    });
  }
});

describe('Policy.parse accepts', () => {
  it('a policy with every requirement and identity type', () => {
    const p = Policy.parse(JSON.stringify({
      default: [{ type: 'reject' }],
      transports: {
        docker: {
          'example.com/a': [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: '/keys/a.gpg' }],
          'example.com/b': [{ type: 'signedBy', keyType: 'signedByGPGKeys', keyPaths: ['/k1', '/k2'], signedIdentity: { type: 'matchExact' } }],
          'example.com/c': [{ type: 'signedBy', keyType: 'X509Certificates', keyData: 'QUJD', signedIdentity: { type: 'matchRepository' } }],
          'example.com/d': [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: '/k', signedIdentity: { type: 'exactReference', dockerReference: 'busybox:1' } }],
          'example.com/e': [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: '/k', signedIdentity: { type: 'exactRepository', dockerRepository: 'busybox' } }],
          'example.com/f': [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: '/k', signedIdentity: { type: 'remapIdentity', prefix: 'example.com', signedPrefix: 'quay.io/x' } }],
          'example.com/g': [{ type: 'sigstoreSigned', keyDatas: ['QUJD', 'REVG'], rekorPublicKeyPaths: ['/r'] }],
          'example.com/h': [{ type: 'sigstoreSigned', fulcio: { caData: 'QUJD', oidcIssuer: 'https://i', subjectEmail: 'a@b' }, rekorPublicKeyData: 'QUJD' }],
          'example.com/i': [{ type: 'sigstoreSigned', pki: { caRootsPath: '/r', caIntermediatesData: 'QUJD', subjectHostname: 'h' } }],
          'example.com/j': [{ type: 'signedBaseLayer', baseLayerIdentity: { type: 'matchRepoDigestOrExact' } }],
          'example.com/k': [{ type: 'insecureAcceptAnything' }, { type: 'reject' }],
        },
        dir: { '/abs/path': [{ type: 'reject' }], '': [{ type: 'insecureAcceptAnything' }] },
        'made-up-transport': { anything: [{ type: 'reject' }] },
      },
    }));
    assert.deepEqual(p.default, [{ type: 'reject' }]);
    assert.deepEqual([...p.transports.keys()], ['docker', 'dir', 'made-up-transport']);
    const docker = p.transports.get('docker')!;
    assert.deepEqual([...docker.keys()].map((k) => k.slice(-1)), ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k']);
    const only = (scope: string): Requirement => docker.get(`example.com/${scope}`)![0];
    assert.deepEqual(only('a'), {
      type: 'signedBy', keyType: 'GPGKeys', keys: { kind: 'path', path: '/keys/a.gpg' },
      signedIdentity: { type: 'matchRepoDigestOrExact' }, signedIdentityExplicit: false,
    });
    assert.deepEqual(only('b'), {
      type: 'signedBy', keyType: 'signedByGPGKeys', keys: { kind: 'paths', paths: ['/k1', '/k2'] },
      signedIdentity: { type: 'matchExact' }, signedIdentityExplicit: true,
    });
    assert.deepEqual(only('c'), {
      type: 'signedBy', keyType: 'X509Certificates', keys: { kind: 'data', data: Buffer.from('ABC') },
      signedIdentity: { type: 'matchRepository' }, signedIdentityExplicit: true,
    });
    const d = only('d');
    assert.ok(d.type === 'signedBy' && d.signedIdentity.type === 'exactReference');
    assert.equal(d.signedIdentity.dockerReference, 'busybox:1');
    assert.equal(d.signedIdentity.reference.toString(), 'docker.io/library/busybox:1');
    const e = only('e');
    assert.ok(e.type === 'signedBy' && e.signedIdentity.type === 'exactRepository');
    assert.equal(e.signedIdentity.repository.name, 'docker.io/library/busybox');
    assert.deepEqual((only('f') as { signedIdentity: SignedIdentity }).signedIdentity, { type: 'remapIdentity', prefix: 'example.com', signedPrefix: 'quay.io/x' });
    assert.deepEqual(only('g'), {
      type: 'sigstoreSigned', keys: { kind: 'datas', datas: [Buffer.from('ABC'), Buffer.from('DEF')] },
      rekorKeys: { kind: 'paths', paths: ['/r'] }, signedIdentity: { type: 'matchRepoDigestOrExact' }, signedIdentityExplicit: false,
    });
    assert.deepEqual(only('h'), {
      type: 'sigstoreSigned', keys: { kind: 'fulcio', ca: { kind: 'data', data: Buffer.from('ABC') }, oidcIssuer: 'https://i', subjectEmail: 'a@b' },
      rekorKeys: { kind: 'data', data: Buffer.from('ABC') }, signedIdentity: { type: 'matchRepoDigestOrExact' }, signedIdentityExplicit: false,
    });
    assert.deepEqual(only('i'), {
      type: 'sigstoreSigned',
      keys: { kind: 'pki', caRoots: { kind: 'path', path: '/r' }, caIntermediates: { kind: 'data', data: Buffer.from('ABC') }, subjectEmail: undefined, subjectHostname: 'h' },
      rekorKeys: undefined, signedIdentity: { type: 'matchRepoDigestOrExact' }, signedIdentityExplicit: false,
    });
    assert.deepEqual(only('j'), { type: 'signedBaseLayer', baseLayerIdentity: { type: 'matchRepoDigestOrExact' } });
    assert.deepEqual(docker.get('example.com/k'), [{ type: 'insecureAcceptAnything' }, { type: 'reject' }]);
    assert.deepEqual([...p.transports.get('dir')!.keys()], ['/abs/path', '']);
  });

  it('an image-rs (CoCo) policy: no transports is fine only with default; kbs:// key paths and raw PEM keyData', () => {
    const p = Policy.parse(`{
      "default": [{"type": "insecureAcceptAnything"}],
      "transports": {
        "docker": {
          "quay.io/kata-containers/confidential-containers": [
            {"type": "signedBy", "keyType": "GPGKeys", "keyPath": "kbs:///default/gpg-public-config/test"}
          ],
          "quay.io/kata-containers/confidential-containers:cosign-signed": [
            {"type": "sigstoreSigned", "keyPath": "kbs:///default/cosign-public-key/test"}
          ],
          "quay.io/kata-containers/pem": [
            {"type": "sigstoreSigned", "keyData": ${JSON.stringify(PEM)}, "signedIdentity": {"type": "matchRepository"}}
          ]
        }
      }
    }`);
    const docker = p.transports.get('docker')!;
    const kbs = docker.get('quay.io/kata-containers/confidential-containers')![0];
    assert.ok(kbs.type === 'signedBy');
    assert.deepEqual(kbs.keys, { kind: 'path', path: 'kbs:///default/gpg-public-config/test' });
    const pem = docker.get('quay.io/kata-containers/pem')![0];
    assert.ok(pem.type === 'sigstoreSigned');
    assert.deepEqual(pem.keys, { kind: 'data', data: Buffer.from(PEM) });
  });

  it('a policy without transports (image-rs requires them, containers/image does not)', () => {
    const p = Policy.parse('{"default":[{"type":"reject"}]}');
    assert.equal(p.transports.size, 0);
  });

  it('sigstoreSigned keyData as base64 of the PEM, and raw PEM, to the same bytes', () => {
    const b64 = Policy.parse(sigstore(`"keyData":"${Buffer.from(PEM).toString('base64')}"`)).default[0];
    const raw = Policy.parse(sigstore(`"keyData":${JSON.stringify(PEM)}`)).default[0];
    assert.deepEqual(b64, raw);
  });

  it('fulcio and pki CA data as base64 of the PEM, and raw PEM (the CoCo way), to the same bytes', () => {
    const b64 = Buffer.from(PEM).toString('base64');
    const rekor = `"rekorPublicKeyData":"${b64}"`;
    assert.deepEqual(
      Policy.parse(sigstore(`"fulcio":{"caData":"${b64}","oidcIssuer":"https://i","subjectEmail":"a@b"},${rekor}`)).default[0],
      Policy.parse(sigstore(`"fulcio":{"caData":${JSON.stringify(PEM)},"oidcIssuer":"https://i","subjectEmail":"a@b"},${rekor}`)).default[0],
    );
    assert.deepEqual(
      Policy.parse(sigstore(`"pki":{"caRootsData":"${b64}","caIntermediatesData":"${b64}","subjectEmail":"a@b"}`)).default[0],
      Policy.parse(sigstore(`"pki":{"caRootsData":${JSON.stringify(PEM)},"caIntermediatesData":${JSON.stringify(PEM)},"subjectEmail":"a@b"}`)).default[0],
    );
  });

  it('base64 with line breaks, as Go does', () => {
    const r = Policy.parse(signedBy('"keyType":"GPGKeys","keyData":"QU\\nJD\\r\\nREVG"')).default[0];
    assert.ok(r.type === 'signedBy');
    assert.deepEqual(r.keys, { kind: 'data', data: Buffer.from('ABCDEF') });
  });

  it('a docker scope that is not fully expanded (it never matches)', () => {
    const p = Policy.parse(withTransports(`{"docker":{"busybox":${ANY}}}`));
    assert.ok(p.transports.get('docker')!.has('busybox'));
  });

  it('scopes skopeo 1.9.3 accepts for other transports', () => {
    const p = Policy.parse(withTransports(`{"docker-daemon":{"busybox":${ANY}},"sif":{"/a/b.sif":${ANY}},` +
      `"containers-storage":{"[overlay@/var/lib/containers/storage]docker.io/library/busybox":${ANY},"[/var/lib/c]":${ANY}},"ostree":{"x":${ANY}}}`));
    assert.deepEqual([...p.transports.keys()], ['docker-daemon', 'sif', 'containers-storage', 'ostree']);
  });

  it('signedBy keyPaths [] and keyData "" (present, so one source; they just hold no keys)', () => {
    const a = Policy.parse(signedBy('"keyType":"GPGKeys","keyPaths":[]')).default[0];
    assert.ok(a.type === 'signedBy');
    assert.deepEqual(a.keys, { kind: 'paths', paths: [] });
    const b = Policy.parse(signedBy('"keyType":"GPGKeys","keyData":""')).default[0];
    assert.ok(b.type === 'signedBy');
    assert.deepEqual(b.keys, { kind: 'data', data: Buffer.alloc(0) });
  });

  it('bytes as well as text', () => {
    assert.deepEqual(Policy.parse(Buffer.from(withDefault('{"type":"reject"}'))).default, [{ type: 'reject' }]);
  });
});

describe('requirementsFor (docker transport scope selection)', () => {
  const scopes = [
    'docker.io/library/busybox:latest',
    `docker.io/library/busybox@sha256:${HEX}`,
    'docker.io/library/busybox',
    'docker.io/library',
    'quay.io',
    '*.example.com',
    'example.com',
    'registry.example.org:5000/team',
    '*.org',
    'localhost:5000',
    '*.0.1',
    '',
  ];
  const policy = Policy.parse(withTransports(`{"docker":{${scopes.map((s) => `${JSON.stringify(s)}:${ANY}`).join(',')}}}`));
  const cases: [string, string][] = [
    ['busybox', 'docker.io/library/busybox:latest'],
    ['docker.io/library/busybox:latest', 'docker.io/library/busybox:latest'],
    ['busybox:1.36', 'docker.io/library/busybox'],
    [`busybox@sha256:${HEX}`, `docker.io/library/busybox@sha256:${HEX}`],
    [`busybox@sha256:${HEX2}`, 'docker.io/library/busybox'],
    [`busybox:latest@sha256:${HEX2}`, 'docker.io/library/busybox'],
    ['library/alpine', 'docker.io/library'],
    ['index.docker.io/library/alpine', 'docker.io/library'],
    ['user/app', ''],
    ['quay.io/a/b:v1', 'quay.io'],
    ['quay.io:443/a/b', ''],
    ['a.example.com/x', '*.example.com'],
    ['b.c.example.com:5000/x/y', '*.example.com'],
    ['example.com/x', 'example.com'],
    ['example.com:5000/x', ''],
    ['registry.example.org:5000/team/app:v1', 'registry.example.org:5000/team'],
    ['registry.example.org/team/app', '*.org'],
    ['localhost:5000/app', 'localhost:5000'],
    ['localhost/app', ''],
    ['127.0.0.1:5000/app', '*.0.1'],
  ];
  for (const [ref, scope] of cases) {
    it(`${ref} → ${JSON.stringify(scope)}`, () => {
      const got = requirementsFor(policy, Reference.parse(ref));
      assert.equal(got.scope, scope);
      assert.equal(got.requirements, scope === '' ? policy.transports.get('docker')!.get('')! : policy.transports.get('docker')!.get(scope)!);
    });
  }

  it('*.example.com does not match example.com itself', () => {
    const p = Policy.parse(withTransports(`{"docker":{"*.example.com":[{"type":"reject"}]}}`));
    assert.equal(requirementsFor(p, Reference.parse('example.com/x')).scope, 'default');
    assert.equal(requirementsFor(p, Reference.parse('deep.sub.example.com:8443/x')).scope, '*.example.com');
  });

  it('a port-less host scope does not cover the host with a port', () => {
    const p = Policy.parse(withTransports(`{"docker":{"example.com":[{"type":"reject"}]}}`));
    assert.equal(requirementsFor(p, Reference.parse('example.com:5000/x')).scope, 'default');
  });

  it('falls back to default, reported as `default`', () => {
    const p = Policy.parse(withTransports(`{"dir":{"":[{"type":"reject"}]}}`));
    const got = requirementsFor(p, Reference.parse('busybox'));
    assert.equal(got.scope, 'default');
    assert.equal(got.requirements, p.default);
  });

  it('the most specific scope wins outright; lists are not merged', () => {
    const p = Policy.parse(withTransports('{"docker":{"docker.io":[{"type":"reject"}],"docker.io/library/busybox":[{"type":"insecureAcceptAnything"}]}}'));
    assert.deepEqual(requirementsFor(p, Reference.parse('busybox')).requirements, [{ type: 'insecureAcceptAnything' }]);
  });

  it('lists the identity and namespaces as containers/image does', () => {
    assert.equal(policyIdentity(Reference.parse('busybox')), 'docker.io/library/busybox:latest');
    assert.equal(policyIdentity(Reference.parseNormalized('busybox')), 'docker.io/library/busybox:latest');
    assert.deepEqual(policyNamespaces(Reference.parse('reg.a.example.com:5000/ns/app:v1')), [
      'reg.a.example.com:5000/ns/app', 'reg.a.example.com:5000/ns', 'reg.a.example.com:5000', '*.a.example.com', '*.example.com', '*.com',
    ]);
    assert.deepEqual(policyNamespaces(Reference.parse('busybox')), ['docker.io/library/busybox', 'docker.io/library', 'docker.io', '*.io']);
    assert.deepEqual(policyNamespaces(Reference.parse('127.0.0.1/x')), ['127.0.0.1/x', '127.0.0.1', '*.0.0.1', '*.0.1', '*.1']);
    assert.deepEqual(policyNamespaces(Reference.parse('localhost/a/b')), ['localhost/a/b', 'localhost/a', 'localhost']);
  });
});

describe('identityMatches (signedIdentity × signature claim)', () => {
  const repo = 'docker.io/library/busybox';
  const remap: SignedIdentity = { type: 'remapIdentity', prefix: 'mirror.local/ns', signedPrefix: 'quay.io/org' };
  const exactRef = (s: string): SignedIdentity => ({ type: 'exactReference', dockerReference: s, reference: Reference.parseNormalized(s) });
  const exactRepo = (s: string): SignedIdentity => ({ type: 'exactRepository', dockerRepository: s, repository: Reference.parseNormalized(s) });
  const cases: [SignedIdentity, string, string, boolean][] = [
    // identity, intended (as the user named it), signature docker-reference, expected
    [{ type: 'matchExact' }, 'busybox', `${repo}:latest`, true],
    [{ type: 'matchExact' }, 'busybox', 'busybox:latest', true],
    [{ type: 'matchExact' }, 'busybox', 'busybox', false],
    [{ type: 'matchExact' }, 'busybox', `${repo}:1.36`, false],
    [{ type: 'matchExact' }, `busybox@sha256:${HEX}`, `${repo}:latest`, false],
    [{ type: 'matchExact' }, `busybox@sha256:${HEX}`, `${repo}@sha256:${HEX}`, true],
    [{ type: 'matchRepoDigestOrExact' }, 'busybox:1.36', `${repo}:1.36`, true],
    [{ type: 'matchRepoDigestOrExact' }, 'busybox:1.36', `${repo}:latest`, false],
    [{ type: 'matchRepoDigestOrExact' }, 'busybox:1.36', repo, false],
    [{ type: 'matchRepoDigestOrExact' }, 'busybox:1.36', `${repo}@sha256:${HEX}`, false],
    [{ type: 'matchRepoDigestOrExact' }, `busybox@sha256:${HEX}`, `${repo}:latest`, true],
    [{ type: 'matchRepoDigestOrExact' }, `busybox@sha256:${HEX}`, `${repo}@sha256:${HEX2}`, true],
    [{ type: 'matchRepoDigestOrExact' }, `busybox@sha256:${HEX}`, repo, false],
    [{ type: 'matchRepoDigestOrExact' }, `busybox@sha256:${HEX}`, 'docker.io/library/alpine:latest', false],
    [{ type: 'matchRepoDigestOrExact' }, `busybox:1.36@sha256:${HEX}`, `${repo}:other`, true],
    [{ type: 'matchRepository' }, 'busybox:1.36', repo, true],
    [{ type: 'matchRepository' }, 'busybox:1.36', 'index.docker.io/library/busybox', true],
    [{ type: 'matchRepository' }, 'busybox:1.36', `${repo}:anything`, true],
    [{ type: 'matchRepository' }, `busybox@sha256:${HEX}`, repo, true],
    [{ type: 'matchRepository' }, 'busybox', 'quay.io/library/busybox', false],
    [exactRef('quay.io/a/b:v1'), 'busybox', 'quay.io/a/b:v1', true],
    [exactRef('quay.io/a/b:v1'), `busybox@sha256:${HEX}`, 'quay.io/a/b:v1', true],
    [exactRef('quay.io/a/b:v1'), 'quay.io/a/b:v1', 'quay.io/a/b', false],
    [exactRef('quay.io/a/b:v1'), 'quay.io/a/b:v1', 'quay.io/a/b:v2', false],
    [exactRef(`quay.io/a/b@sha256:${HEX}`), 'x', `quay.io/a/b@sha256:${HEX}`, true],
    [exactRepo('quay.io/a/b'), 'busybox', 'quay.io/a/b', true],
    [exactRepo('quay.io/a/b'), 'busybox', `quay.io/a/b@sha256:${HEX}`, true],
    [exactRepo('quay.io/a/b:ignored'), 'busybox', 'quay.io/a/b:v9', true],
    [exactRepo('quay.io/a/b'), 'quay.io/a/b', 'quay.io/a/c', false],
    [remap, 'mirror.local/ns/app:v1', 'quay.io/org/app:v1', true],
    [remap, 'mirror.local/ns/app:v1', 'quay.io/org/app:v2', false],
    [remap, 'mirror.local/ns/app:v1', 'mirror.local/ns/app:v1', false],
    [remap, 'mirror.local/ns/app:v1', 'quay.io/org/app', false],
    [remap, `mirror.local/ns/app@sha256:${HEX}`, 'quay.io/org/app:any', true],
    [remap, 'mirror.local/ns', 'quay.io/org:latest', true],
    [remap, 'mirror.local/nsx/app:v1', 'mirror.local/nsx/app:v1', true],
    [remap, 'mirror.local/nsx/app:v1', 'quay.io/org/x/app:v1', false],
    [{ type: 'remapIdentity', prefix: 'mirror.local', signedPrefix: 'docker.io' }, 'mirror.local/library/busybox', 'busybox:latest', true],
    [{ type: 'remapIdentity', prefix: 'mirror.local/ns', signedPrefix: 'org' }, 'mirror.local/ns/app:v1', 'org/app:v1', false],
  ];
  for (const [id, intended, sig, expected] of cases) {
    it(`${id.type}${'prefix' in id ? `(${id.prefix}→${id.signedPrefix})` : ''}${'dockerReference' in id ? `(${id.dockerReference})` : ''}${'dockerRepository' in id ? `(${id.dockerRepository})` : ''}: ${intended} vs ${sig} → ${expected}`, () => {
      assert.equal(identityMatches(id, Reference.parse(intended), sig), expected);
    });
  }

  it('an unparsable signature reference matches nothing', () => {
    const all: SignedIdentity[] = [
      { type: 'matchExact' }, { type: 'matchRepoDigestOrExact' }, { type: 'matchRepository' },
      exactRef('busybox:latest'), exactRepo('busybox'), { type: 'remapIdentity', prefix: 'docker.io', signedPrefix: 'docker.io' },
    ];
    for (const id of all) {
      for (const sig of ['', 'Busybox:latest', 'docker://busybox:latest', 'busybox:latest ', `busybox@sha256:${HEX.slice(1)}`]) {
        assert.equal(identityMatches(id, Reference.parse('busybox'), sig), false, `${id.type} ${JSON.stringify(sig)}`);
      }
    }
  });
});

describe('signature payloads', () => {
  const simple = (critical: string, optional = '{"creator":"atomic 5.23.1","timestamp":1795835106}'): Buffer =>
    Buffer.from(`{"critical":${critical},"optional":${optional}}`);
  const critical = (type = 'atomic container signature', digest = `sha256:${HEX}`, ref = 'docker.io/library/busybox:latest', extra = ''): string =>
    `{"identity":{"docker-reference":${JSON.stringify(ref)}},"image":{"docker-manifest-digest":${JSON.stringify(digest)}},"type":${JSON.stringify(type)}${extra}}`;
  const cosign = (optional = 'null', ref = 'registry.example.com/ns/app'): Buffer =>
    Buffer.from(`{"critical":${critical('cosign container image signature', `sha256:${HEX}`, ref)},"optional":${optional}}`);

  it('reads a simple-signing payload', () => {
    assert.deepEqual(parseSimpleSigningPayload(simple(critical())), {
      dockerManifestDigest: `sha256:${HEX}`, dockerReference: 'docker.io/library/busybox:latest', creator: 'atomic 5.23.1', timestamp: 1795835106,
    });
  });

  it('reads a cosign payload with a null optional, and with annotations', () => {
    assert.deepEqual(parseCosignPayload(cosign()), {
      dockerManifestDigest: `sha256:${HEX}`, dockerReference: 'registry.example.com/ns/app', creator: undefined, timestamp: undefined,
    });
    assert.equal(parseCosignPayload(cosign('{"env":"prod"}')).dockerReference, 'registry.example.com/ns/app');
  });

  it('accepts sha512 and unknown optional keys', () => {
    const p = parseSimpleSigningPayload(simple(critical(undefined, `sha512:${'c'.repeat(128)}`), '{"whatever":[1,2]}'));
    assert.equal(p.dockerManifestDigest, `sha512:${'c'.repeat(128)}`);
  });

  const bad: [string, () => unknown, RegExp][] = [
    ['simple signing with the cosign type', () => parseSimpleSigningPayload(simple(critical('cosign container image signature'))), /critical\.type: expected "atomic container signature"/],
    ['cosign with the simple-signing type', () => parseCosignPayload(simple(critical(), 'null')), /critical\.type: expected "cosign container image signature"/],
    ['simple signing with a null optional', () => parseSimpleSigningPayload(simple(critical(), 'null')), /optional: must be a JSON object/],
    ['cosign with a string optional', () => parseCosignPayload(cosign('"x"')), /optional: must be a JSON object/],
    ['extra critical key', () => parseSimpleSigningPayload(simple(critical(undefined, undefined, undefined, ',"extra":1'))), /critical: Unknown key "extra"/],
    ['extra image key', () => parseSimpleSigningPayload(simple(critical().replace('"image":{', '"image":{"size":1,'))), /critical\.image: Unknown key "size"/],
    ['extra top-level key', () => parseSimpleSigningPayload(Buffer.from(`{"critical":${critical()},"optional":{},"x":1}`)), /Unknown key "x"/],
    ['missing optional', () => parseSimpleSigningPayload(Buffer.from(`{"critical":${critical()}}`)), /Key "optional" missing in a JSON object/],
    ['missing identity', () => parseSimpleSigningPayload(simple(`{"image":{"docker-manifest-digest":"sha256:${HEX}"},"type":"atomic container signature"}`)), /critical: Key "identity" missing/],
    ['duplicate critical key', () => parseSimpleSigningPayload(simple(critical().replace('"type":', '"type":"atomic container signature","type":'))), /Duplicate key "type"/],
    ['duplicate key in optional', () => parseSimpleSigningPayload(simple(critical(), '{"creator":"a","creator":"b"}')), /Duplicate key "creator"/],
    ['duplicate docker-reference', () => parseCosignPayload(Buffer.from(cosign().toString().replace('"docker-reference":', '"docker-reference":"evil.com/x","docker-reference":'))), /Duplicate key "docker-reference"/],
    ['short digest', () => parseSimpleSigningPayload(simple(critical(undefined, 'sha256:abc'))), /"sha256:abc" is not a valid digest/],
    ['uppercase digest', () => parseSimpleSigningPayload(simple(critical(undefined, `sha256:${HEX.toUpperCase()}`))), /is not a valid digest/],
    ['unknown digest algorithm', () => parseSimpleSigningPayload(simple(critical(undefined, `md5:${HEX.slice(0, 32)}`))), /is not a valid digest/],
    ['digest not a string', () => parseSimpleSigningPayload(simple(critical().replace(`"sha256:${HEX}"`, '1'))), /docker-manifest-digest: must be a string/],
    ['reference not a string', () => parseSimpleSigningPayload(simple(critical().replace('"docker.io/library/busybox:latest"', 'null'))), /docker-reference: must be a string/],
    ['creator not a string', () => parseSimpleSigningPayload(simple(critical(), '{"creator":5}')), /creator must be a string/],
    ['fractional timestamp', () => parseSimpleSigningPayload(simple(critical(), '{"timestamp":1.5}')), /timestamp must be an integer/],
    ['critical not an object', () => parseSimpleSigningPayload(simple('"x"')), /critical: JSON object expected/],
    ['trailing data', () => parseSimpleSigningPayload(Buffer.concat([simple(critical()), Buffer.from('\n{}')])), /after top-level value/],
    ['not JSON', () => parseCosignPayload(Buffer.from('\u0000sigstore-json\n{}')), /invalid character/],
  ];
  for (const [name, run, message] of bad) {
    it(`rejects ${name}`, () => {
      assert.throws(run, (e: unknown) => e instanceof SignatureInvalidError && e.code === 'SIGNATURE_INVALID' && message.test(e.message));
    });
  }
});

describe('strict JSON', () => {
  const fail = (m: string): Error => new ImageTsError('INVALID_ARGUMENT', m);

  it('keeps key order and, when asked, duplicate keys', () => {
    const v = parseStrictJson('{"b":1,"a":[true,false,null,"x\\u00e9\\n"],"b":2}', fail, { duplicateKeys: 'keep' });
    assert.ok(v instanceof JsonObject);
    assert.deepEqual(v.entries.map(([k]) => k), ['b', 'a', 'b']);
    assert.equal(v.get('b'), 2);
    assert.equal(v.firstDuplicateKey(), 'b');
    assert.deepEqual(v.get('a'), [true, false, null, 'xé\n']);
  });

  it('rejects duplicate keys at any depth by default', () => {
    assert.throws(() => parseStrictJson('{"a":{"x":1,"x":1}}', fail), /Duplicate key "x"/);
  });

  const invalid = ['', ' ', '{', '{"a"}', '{"a":1,}', '[1,]', '01', '1.', '-', '1e', '"\t"', '"\\x"', '"\\u12"', 'tru', 'nul', 'NaN', "{'a':1}", '{"a":1}}', '\ufeff{}', '[1]]'];
  for (const text of invalid) {
    it(`rejects ${JSON.stringify(text)}`, () => {
      assert.throws(() => parseStrictJson(text, fail), ImageTsError);
    });
  }

  it('reads numbers as JSON.parse does', () => {
    assert.deepEqual(parseStrictJson('[0,-1,1.5e3,2E-2,-0.5]', fail), [0, -1, 1500, 0.02, -0.5]);
  });

  it('refuses absurd nesting instead of overflowing the stack', () => {
    assert.throws(() => parseStrictJson('['.repeat(5000) + ']'.repeat(5000), fail), /nested deeper/);
  });

  it('decodes base64 as Go does', () => {
    const ok: [string, string][] = [['', ''], ['QQ==', 'A'], ['QUI=', 'AB'], ['QUJD', 'ABC'], ['Q\nU\rJ\r\nD', 'ABC'], ['QR==', 'A']];
    for (const [input, out] of ok) assert.deepEqual(decodeGoBase64(input), Buffer.from(out, 'latin1'), input);
    const bad: [string, number][] = [['Q', 0], ['QU', 0], ['QUJDQ', 4], ['=', 0], ['Q=', 1], ['QQ=', 3], ['QQ==\nx', 5], ['QUJD QUJD', 4]];
    for (const [input, at] of bad) assert.deepEqual(decodeGoBase64(input), { errorAt: at }, input);
  });
});
