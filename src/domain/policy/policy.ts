import { PolicyInvalidError } from '../errors.js';
import { Reference, isReferenceDomain, isReferencePathComponent } from '../image/reference.js';
import { decodeGoBase64, jsonKind, parseStrictJson, walkExactFields, walkObject, type JsonValue } from './strict-json.js';

/**
 * policy.json, read the way containers/image reads it: every object level is
 * strict (unknown or duplicate keys, wrong JSON types and empty requirement
 * lists are errors, with containers/image's messages), and errors surface in
 * document order. One parser serves both dialects: the two things CoCo
 * (image-rs) policies do differently are a missing `transports` key, which
 * containers/image accepts anyway, and `sigstoreSigned.keyData` written as
 * raw PEM, which is accepted here as well as base64 because no base64 text
 * can start with `-----BEGIN` (the same holds for the fulcio and pki CA
 * data fields). Key paths stay strings: they are resource
 * URIs (a path, `file://…`, `kbs:///…`) loaded outside the domain.
 */

export type KeyPathSource = { readonly kind: 'path'; readonly path: string };
export type KeyPathsSource = { readonly kind: 'paths'; readonly paths: readonly string[] };
export type KeyDataSource = { readonly kind: 'data'; readonly data: Buffer };
export type KeyDatasSource = { readonly kind: 'datas'; readonly datas: readonly Buffer[] };

/** Where a requirement's trusted keys come from. */
export type KeySource = KeyPathSource | KeyPathsSource | KeyDataSource | KeyDatasSource;

export type SignedByKeyType = 'GPGKeys' | 'signedByGPGKeys' | 'X509Certificates' | 'signedByX509CAs';
const SIGNED_BY_KEY_TYPES: readonly string[] = ['GPGKeys', 'signedByGPGKeys', 'X509Certificates', 'signedByX509CAs'];

export type SignedIdentity =
  | { readonly type: 'matchExact' }
  | { readonly type: 'matchRepoDigestOrExact' }
  | { readonly type: 'matchRepository' }
  /** `dockerReference` as written; `reference` is its ParseNormalizedNamed form (has a tag or digest). */
  | { readonly type: 'exactReference'; readonly dockerReference: string; readonly reference: Reference }
  /** `dockerRepository` as written; only `repository.name` matters. */
  | { readonly type: 'exactRepository'; readonly dockerRepository: string; readonly repository: Reference }
  | { readonly type: 'remapIdentity'; readonly prefix: string; readonly signedPrefix: string };

/** A Fulcio (keyless) trust root: certificates chaining to `ca` for this OIDC issuer and email. */
export interface FulcioTrust {
  readonly kind: 'fulcio';
  readonly ca: KeyPathSource | KeyDataSource;
  readonly oidcIssuer: string;
  readonly subjectEmail: string;
}

/** A bring-your-own PKI trust root; at least one of the subjects is set. */
export interface PkiTrust {
  readonly kind: 'pki';
  readonly caRoots: KeyPathSource | KeyDataSource;
  readonly caIntermediates: KeyPathSource | KeyDataSource | undefined;
  readonly subjectEmail: string | undefined;
  readonly subjectHostname: string | undefined;
}

export interface InsecureAcceptAnythingRequirement {
  readonly type: 'insecureAcceptAnything';
}

export interface RejectRequirement {
  readonly type: 'reject';
}

export interface SignedByRequirement {
  readonly type: 'signedBy';
  readonly keyType: SignedByKeyType;
  readonly keys: KeyPathSource | KeyPathsSource | KeyDataSource;
  readonly signedIdentity: SignedIdentity;
  /** False when the policy left signedIdentity out and matchRepoDigestOrExact was filled in. */
  readonly signedIdentityExplicit: boolean;
}

export interface SigstoreSignedRequirement {
  readonly type: 'sigstoreSigned';
  readonly keys: KeySource | FulcioTrust | PkiTrust;
  readonly rekorKeys: KeySource | undefined;
  readonly signedIdentity: SignedIdentity;
  /**
   * False when signedIdentity was left out. containers/image then applies
   * matchRepoDigestOrExact (filled in above); image-rs checks no identity at all.
   */
  readonly signedIdentityExplicit: boolean;
}

export interface SignedBaseLayerRequirement {
  readonly type: 'signedBaseLayer';
  readonly baseLayerIdentity: SignedIdentity;
}

export type Requirement =
  | InsecureAcceptAnythingRequirement
  | RejectRequirement
  | SignedByRequirement
  | SigstoreSignedRequirement
  | SignedBaseLayerRequirement;

export type Requirements = readonly [Requirement, ...Requirement[]];

export class Policy {
  /** Used when no transport scope matches; never empty. */
  readonly default: Requirements;
  /** transport name → scope → requirements, in file order. Unknown transports are kept (and never used). */
  readonly transports: ReadonlyMap<string, ReadonlyMap<string, Requirements>>;

  constructor(defaults: Requirements, transports: ReadonlyMap<string, ReadonlyMap<string, Requirements>>) {
    this.default = defaults;
    this.transports = transports;
  }

  /** Parses policy.json bytes; throws PolicyInvalidError (POLICY_INVALID) on the first problem. */
  static parse(input: Uint8Array | string): Policy {
    const root = parseStrictJson(input, fail, { duplicateKeys: 'keep' });
    let defaults: Requirements | undefined;
    let transports: ReadonlyMap<string, ReadonlyMap<string, Requirements>> = new Map();
    walkObject(root, fail, (key) => {
      if (key === 'default') return (v) => (defaults = parseRequirements(v));
      if (key === 'transports') return (v) => (transports = parseTransports(v));
      return undefined;
    });
    if (!defaults) throw fail('Default policy is missing');
    return new Policy(defaults, transports);
  }
}

function fail(message: string): PolicyInvalidError {
  return new PolicyInvalidError(message);
}

function parseTransports(value: JsonValue): Map<string, Map<string, Requirements>> {
  const transports = new Map<string, Map<string, Requirements>>();
  walkObject(value, fail, (transport) => (scopesValue) => {
    const scopes = new Map<string, Requirements>();
    walkObject(scopesValue, fail, (scope) => {
      // containers/image reports a scope its transport refuses as an unknown key.
      if (scope !== '' && !scopeIsValid(transport, scope)) return undefined;
      return (v) => scopes.set(scope, parseRequirements(v));
    });
    transports.set(transport, scopes);
  });
  return transports;
}

/**
 * ValidatePolicyConfigurationScope of the transports containers/image knows,
 * as skopeo 1.9.3 applies them (newer releases also refuse scopes for
 * docker-daemon and sif); unknown transports accept anything.
 */
function scopeIsValid(transport: string, scope: string): boolean {
  switch (transport) {
    case 'dir':
    case 'oci':
    case 'oci-archive':
    case 'sif':
      // An absolute, clean path; `/` alone would shadow "".
      return scope.startsWith('/') && scope !== '/' && !scope.endsWith('/') && scope.split('/').slice(1).every((s) => s !== '' && s !== '.' && s !== '..');
    case 'docker-archive':
    case 'tarball':
      return false;
    case 'containers-storage': {
      // `[driver@/root+options]…` or `[/root]…`; what follows the bracket is not checked.
      const close = scope.indexOf(']');
      if (!scope.startsWith('[') || close < 0) return false;
      const store = scope.slice(1, close);
      return store.slice(store.indexOf('@') + 1).startsWith('/');
    }
    default:
      // docker takes any string: a scope that is not fully expanded parses but never matches.
      return true;
  }
}

function parseRequirements(value: JsonValue): Requirements {
  if (value !== null && !Array.isArray(value)) throw typeError(value, '[]json.RawMessage');
  const items = value ?? [];
  const [first, ...rest] = items;
  if (first === undefined) throw fail('List of verification policy requirements must not be empty');
  return [parseRequirement(first), ...rest.map(parseRequirement)];
}

function parseRequirement(value: JsonValue): Requirement {
  const type = sniffType(value, 'prCommon', 'prTypeIdentifier');
  switch (type) {
    case 'insecureAcceptAnything':
    case 'reject': {
      let got = '';
      walkExactFields(value, fail, { type: (v) => (got = goString(v)) });
      checkType(got, type);
      return { type };
    }
    case 'signedBy':
      return parseSignedBy(value);
    case 'sigstoreSigned':
      return parseSigstoreSigned(value);
    case 'signedBaseLayer': {
      let got = '';
      let identity: JsonValue = null;
      walkExactFields(value, fail, { type: (v) => (got = goString(v)), baseLayerIdentity: (v) => (identity = v) });
      checkType(got, type);
      return { type, baseLayerIdentity: parseSignedIdentity(identity) };
    }
    default:
      throw fail(`Unknown policy requirement type ${JSON.stringify(type)}`);
  }
}

function parseSignedBy(value: JsonValue): SignedByRequirement {
  let type = '';
  let keyType = '';
  let keyPath: string | undefined;
  let keyPaths: string[] | null | undefined;
  let keyData: Buffer | null | undefined;
  let identity: JsonValue | undefined;
  walkObject(value, fail, (key) => {
    switch (key) {
      case 'type':
        return (v) => (type = goString(v));
      case 'keyType':
        return (v) => (keyType = parseKeyType(v));
      case 'keyPath':
        return (v) => (keyPath = goString(v));
      case 'keyPaths':
        return (v) => (keyPaths = goStringSlice(v));
      case 'keyData':
        return (v) => (keyData = goBytes(v));
      case 'signedIdentity':
        return (v) => (identity = v);
      default:
        return undefined;
    }
  });
  checkType(type, 'signedBy');
  const signedIdentity = identity === undefined ? MATCH_REPO_DIGEST_OR_EXACT : parseSignedIdentity(identity);

  const given = [keyPath, keyPaths, keyData].filter((k) => k !== undefined).length;
  if (given === 0) throw fail('Exactly one of keyPath, keyPaths and keyData must be specified, none of them present');
  if (given > 1) throw fail('Exactly one of keyPath, keyPaths and keyData must be specified, more than one present');
  if (!SIGNED_BY_KEY_TYPES.includes(keyType)) throw fail(`invalid keyType ${JSON.stringify(keyType)}`);
  // Go's zero values: `"keyPath": ""` and `null` count as absent.
  let keys: SignedByRequirement['keys'];
  if (keyPath) keys = { kind: 'path', path: keyPath };
  else if (keyPaths) keys = { kind: 'paths', paths: keyPaths };
  else if (keyData) keys = { kind: 'data', data: keyData };
  else throw fail('exactly one of keyPath, keyPaths and keyData must be specified');
  return { type: 'signedBy', keyType: keyType as SignedByKeyType, keys, signedIdentity, signedIdentityExplicit: identity !== undefined };
}

function parseKeyType(v: JsonValue): string {
  const s = goString(v);
  if (!SIGNED_BY_KEY_TYPES.includes(s)) throw fail(`Unrecognized keyType value ${JSON.stringify(s)}`);
  return s;
}

function parseSigstoreSigned(value: JsonValue): SigstoreSignedRequirement {
  let type = '';
  let keyPath: string | undefined;
  let keyPaths: string[] | null | undefined;
  let keyData: Buffer | null | undefined;
  let keyDatas: Buffer[] | null | undefined;
  let fulcio: FulcioTrust | undefined;
  let pki: PkiTrust | undefined;
  let rekorPath: string | undefined;
  let rekorPaths: string[] | null | undefined;
  let rekorData: Buffer | null | undefined;
  let rekorDatas: Buffer[] | null | undefined;
  let identity: JsonValue | undefined;
  walkObject(value, fail, (key) => {
    switch (key) {
      case 'type':
        return (v) => (type = goString(v));
      case 'keyPath':
        return (v) => (keyPath = goString(v));
      case 'keyPaths':
        return (v) => (keyPaths = goStringSlice(v));
      case 'keyData':
        return (v) => (keyData = goBytes(v, { rawPem: true }));
      case 'keyDatas':
        return (v) => (keyDatas = goBytesSlice(v));
      case 'fulcio':
        return (v) => (fulcio = parseFulcio(v));
      case 'pki':
        return (v) => (pki = parsePki(v));
      case 'rekorPublicKeyPath':
        return (v) => (rekorPath = goString(v));
      case 'rekorPublicKeyPaths':
        return (v) => (rekorPaths = goStringSlice(v));
      case 'rekorPublicKeyData':
        return (v) => (rekorData = goBytes(v));
      case 'rekorPublicKeyDatas':
        return (v) => (rekorDatas = goBytesSlice(v));
      case 'signedIdentity':
        return (v) => (identity = v);
      default:
        return undefined;
    }
  });
  checkType(type, 'sigstoreSigned');
  const signedIdentity = identity === undefined ? MATCH_REPO_DIGEST_OR_EXACT : parseSignedIdentity(identity);

  // Present-but-empty lists are refused before the one-source rule, in containers/image's order
  // (including its spelling of the Rekor field names).
  if (keyPaths !== undefined && !keyPaths?.length) throw fail('"keyPaths" contains no entries');
  if (keyDatas !== undefined && !keyDatas?.length) throw fail('"keyDatas" contains no entries');
  if (rekorPaths !== undefined && !rekorPaths?.length) throw fail('"rekorPublickeyPaths" contains no entries');
  if (rekorDatas !== undefined && !rekorDatas?.length) throw fail('"rekorPublickeyDatas" contains no entries');

  const keySources: (SigstoreSignedRequirement['keys'] | undefined)[] = [
    keyPath ? { kind: 'path', path: keyPath } : undefined,
    keyPaths ? { kind: 'paths', paths: keyPaths } : undefined,
    keyData ? { kind: 'data', data: keyData } : undefined,
    keyDatas ? { kind: 'datas', datas: keyDatas } : undefined,
    fulcio,
    pki,
  ];
  const keys = keySources.filter((k) => k !== undefined);
  if (keys.length !== 1 || keys[0] === undefined) {
    throw fail('exactly one of keyPath, keyPaths, keyData, keyDatas, fulcio, and pki must be specified');
  }
  const rekorSources: (KeySource | undefined)[] = [
    rekorPath ? { kind: 'path', path: rekorPath } : undefined,
    rekorPaths ? { kind: 'paths', paths: rekorPaths } : undefined,
    rekorData ? { kind: 'data', data: rekorData } : undefined,
    rekorDatas ? { kind: 'datas', datas: rekorDatas } : undefined,
  ];
  const rekor = rekorSources.filter((k) => k !== undefined);
  if (rekor.length > 1) throw fail(`at most one of ${REKOR_FIELDS} can be used simultaneously`);
  if (fulcio && rekor.length === 0) throw fail(`At least one of ${REKOR_FIELDS} must be specified if fulcio is used`);
  if (pki && rekor.length > 0) throw fail(`${REKOR_FIELDS} are not supported for pki`);
  return {
    type: 'sigstoreSigned',
    keys: keys[0],
    rekorKeys: rekor[0],
    signedIdentity,
    signedIdentityExplicit: identity !== undefined,
  };
}

/** containers/image's list, misspellings included, so messages compare equal. */
const REKOR_FIELDS = 'rekorPublickeyPath, rekorPublicKeyPaths, rekorPublickeyData and rekorPublicKeyDatas';

function parseFulcio(value: JsonValue): FulcioTrust {
  let caPath = '';
  let caData: Buffer | null | undefined;
  let oidcIssuer = '';
  let subjectEmail = '';
  walkObject(value, fail, (key) => {
    switch (key) {
      case 'caPath':
        return (v) => (caPath = goString(v));
      case 'caData':
        return (v) => (caData = goBytes(v, { rawPem: true }));
      case 'oidcIssuer':
        return (v) => (oidcIssuer = goString(v));
      case 'subjectEmail':
        return (v) => (subjectEmail = goString(v));
      default:
        return undefined;
    }
  });
  const ca = pathOrData(caPath, caData, 'caPath', 'caData');
  if (!ca) throw fail('At least one of caPath and caData must be specified');
  if (oidcIssuer === '') throw fail('oidcIssuer not specified');
  if (subjectEmail === '') throw fail('subjectEmail not specified');
  return { kind: 'fulcio', ca, oidcIssuer, subjectEmail };
}

function parsePki(value: JsonValue): PkiTrust {
  let caRootsPath = '';
  let caRootsData: Buffer | null | undefined;
  let caIntermediatesPath = '';
  let caIntermediatesData: Buffer | null | undefined;
  let subjectEmail = '';
  let subjectHostname = '';
  walkObject(value, fail, (key) => {
    switch (key) {
      case 'caRootsPath':
        return (v) => (caRootsPath = goString(v));
      case 'caRootsData':
        return (v) => (caRootsData = goBytes(v, { rawPem: true }));
      case 'caIntermediatesPath':
        return (v) => (caIntermediatesPath = goString(v));
      case 'caIntermediatesData':
        return (v) => (caIntermediatesData = goBytes(v, { rawPem: true }));
      case 'subjectEmail':
        return (v) => (subjectEmail = goString(v));
      case 'subjectHostname':
        return (v) => (subjectHostname = goString(v));
      default:
        return undefined;
    }
  });
  const caRoots = pathOrData(caRootsPath, caRootsData, 'caRootsPath', 'caRootsData');
  if (!caRoots) throw fail('At least one of caRootsPath and caRootsData must be specified');
  const caIntermediates = pathOrData(caIntermediatesPath, caIntermediatesData, 'caIntermediatesPath', 'caIntermediatesData');
  if (subjectEmail === '' && subjectHostname === '') throw fail('At least one of subjectEmail, subjectHostname must be specified');
  return {
    kind: 'pki',
    caRoots,
    caIntermediates,
    subjectEmail: subjectEmail || undefined,
    subjectHostname: subjectHostname || undefined,
  };
}

/** One of a path/data pair; both given is an error, neither is undefined. */
function pathOrData(
  path: string,
  data: Buffer | null | undefined,
  pathField: string,
  dataField: string,
): KeyPathSource | KeyDataSource | undefined {
  if (path !== '' && data) throw fail(`${pathField} and ${dataField} cannot be used simultaneously`);
  if (path !== '') return { kind: 'path', path };
  if (data) return { kind: 'data', data };
  return undefined;
}

const MATCH_REPO_DIGEST_OR_EXACT: SignedIdentity = { type: 'matchRepoDigestOrExact' };

function parseSignedIdentity(value: JsonValue): SignedIdentity {
  const type = sniffType(value, 'prmCommon', 'prmTypeIdentifier');
  let got = '';
  const typeField = { type: (v: JsonValue) => (got = goString(v)) };
  switch (type) {
    case 'matchExact':
    case 'matchRepoDigestOrExact':
    case 'matchRepository':
      walkExactFields(value, fail, typeField);
      checkType(got, type);
      return { type };
    case 'exactReference': {
      let dockerReference = '';
      walkExactFields(value, fail, { ...typeField, dockerReference: (v) => (dockerReference = goString(v)) });
      checkType(got, type);
      let reference: Reference;
      try {
        reference = Reference.parseNormalized(dockerReference);
      } catch (err) {
        throw fail(`Invalid format of dockerReference ${dockerReference}: ${(err as Error).message}`);
      }
      if (reference.nameOnly) throw fail(`dockerReference ${dockerReference} contains neither a tag nor digest`);
      return { type, dockerReference, reference };
    }
    case 'exactRepository': {
      let dockerRepository = '';
      walkExactFields(value, fail, { ...typeField, dockerRepository: (v) => (dockerRepository = goString(v)) });
      checkType(got, type);
      let repository: Reference;
      try {
        repository = Reference.parseNormalized(dockerRepository);
      } catch (err) {
        throw fail(`Invalid format of dockerRepository ${dockerRepository}: ${(err as Error).message}`);
      }
      return { type, dockerRepository, repository };
    }
    case 'remapIdentity': {
      let prefix = '';
      let signedPrefix = '';
      walkExactFields(value, fail, {
        ...typeField,
        prefix: (v) => (prefix = goString(v)),
        signedPrefix: (v) => (signedPrefix = goString(v)),
      });
      checkType(got, type);
      for (const p of [prefix, signedPrefix]) {
        if (!isRemapPrefix(p)) throw fail(`prefix ${JSON.stringify(p)} is not valid`);
      }
      return { type, prefix, signedPrefix };
    }
    default:
      throw fail(`Unknown policy reference match type ${JSON.stringify(type)}`);
  }
}

/**
 * `host[:port]` or `host[:port]/path/components`, no tag or digest. Like
 * containers/image this lets `ns/repo` through (its first segment parses as
 * a host); such a prefix just never matches a fully expanded name.
 */
function isRemapPrefix(s: string): boolean {
  const slash = s.indexOf('/');
  if (slash < 0) return isReferenceDomain(s);
  return isReferenceDomain(s.slice(0, slash)) && s.slice(slash + 1).split('/').every(isReferencePathComponent);
}

/**
 * The `type` field as containers/image first peeks at it, with a lax Go
 * json.Unmarshal: keys match case-insensitively, the last one wins, null
 * leaves it empty, and a non-object is a type error.
 */
function sniffType(value: JsonValue, struct: string, typeName: string): string {
  if (value === null) return '';
  if (typeof value !== 'object' || Array.isArray(value)) throw typeError(value, `signature.${struct}`);
  let type = '';
  for (const [key, v] of value.entries) {
    if (key.toLowerCase() !== 'type' || v === null) continue;
    if (typeof v !== 'string') {
      throw fail(`json: cannot unmarshal ${jsonKind(v)} into Go struct field ${struct}.type of type signature.${typeName}`);
    }
    type = v;
  }
  return type;
}

/** The strict pass disagreeing with the peek (`"TYPE"` vs `"type"`, a null type) is still an error. */
function checkType(got: string, expected: string): void {
  if (got !== expected) throw fail(`Unexpected policy requirement type ${JSON.stringify(got)}`);
}

function typeError(v: JsonValue, goType: string): PolicyInvalidError {
  return fail(`json: cannot unmarshal ${jsonKind(v)} into Go value of type ${goType}`);
}

/** A Go string field: null leaves the zero value. */
function goString(v: JsonValue): string {
  if (v === null) return '';
  if (typeof v !== 'string') throw typeError(v, 'string');
  return v;
}

/** A Go []string: null is nil (absent), elements follow goString. */
function goStringSlice(v: JsonValue): string[] | null {
  if (v === null) return null;
  if (!Array.isArray(v)) throw typeError(v, '[]string');
  return v.map(goString);
}

/**
 * A Go []byte: standard padded base64; null is nil (absent). With `rawPem`,
 * PEM text is taken verbatim, as image-rs reads sigstoreSigned keyData.
 */
function goBytes(v: JsonValue, options: { rawPem?: boolean } = {}): Buffer | null {
  if (v === null) return null;
  if (typeof v !== 'string') throw typeError(v, '[]uint8');
  if (options.rawPem && v.trimStart().startsWith('-----BEGIN ')) return Buffer.from(v, 'utf8');
  const decoded = decodeGoBase64(v);
  if (!Buffer.isBuffer(decoded)) throw fail(`illegal base64 data at input byte ${decoded.errorAt}`);
  return decoded;
}

/** A Go [][]byte: null is nil (absent); a null element is an empty key. */
function goBytesSlice(v: JsonValue): Buffer[] | null {
  if (v === null) return null;
  if (!Array.isArray(v)) throw typeError(v, '[][]uint8');
  return v.map((item) => goBytes(item) ?? Buffer.alloc(0));
}
