import { InvalidConfigError } from '../errors.js';
import { Digest } from './digest.js';
import { isObject, optionalString, optionalStringArray, optionalStringMap, parseJsonObject, type JsonObject } from './json-fields.js';

const fail = (m: string): Error => new InvalidConfigError(m);

/** The execution part of an image config (OCI `config`, Docker `config`). */
export interface ContainerConfig {
  readonly User?: string | undefined;
  readonly Env?: readonly string[] | undefined;
  readonly Entrypoint?: readonly string[] | undefined;
  readonly Cmd?: readonly string[] | undefined;
  readonly WorkingDir?: string | undefined;
  readonly Volumes?: readonly string[] | undefined;
  readonly ExposedPorts?: readonly string[] | undefined;
  readonly Labels?: Readonly<Record<string, string>> | undefined;
  readonly StopSignal?: string | undefined;
}

/** An OCI image configuration: platform, execution defaults and the ordered diff_ids. */
export interface ImageConfig {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string | undefined;
  readonly osVersion?: string | undefined;
  readonly osFeatures?: readonly string[] | undefined;
  readonly author?: string | undefined;
  readonly created?: string | undefined;
  readonly config?: ContainerConfig | undefined;
  readonly diffIds: readonly Digest[];
}

export const ImageConfig = {
  parse(bytes: Uint8Array): ImageConfig {
    const doc = parseJsonObject(bytes, 'image config', fail);
    const os = optionalString(doc, 'os', 'config', fail);
    const architecture = optionalString(doc, 'architecture', 'config', fail);
    if (!os) throw fail('config.os is missing');
    if (!architecture) throw fail('config.architecture is missing');
    const rootfs = doc['rootfs'];
    if (!isObject(rootfs)) throw fail('config.rootfs is missing');
    if (rootfs['type'] !== 'layers') throw fail('config.rootfs.type must be "layers"');
    const ids = rootfs['diff_ids'];
    if (!Array.isArray(ids)) throw fail('config.rootfs.diff_ids must be an array');
    const diffIds = ids.map((v, i) => {
      if (typeof v !== 'string') throw fail(`config.rootfs.diff_ids[${i}] must be a string`);
      try {
        return Digest.parse(v);
      } catch (err) {
        throw fail(`config.rootfs.diff_ids[${i}]: ${(err as Error).message}`);
      }
    });
    const cc = doc['config'];
    return {
      os,
      architecture,
      variant: optionalString(doc, 'variant', 'config', fail),
      osVersion: optionalString(doc, 'os.version', 'config', fail),
      osFeatures: optionalStringArray(doc, 'os.features', 'config', fail),
      author: optionalString(doc, 'author', 'config', fail),
      created: optionalString(doc, 'created', 'config', fail),
      config: isObject(cc) ? parseContainerConfig(cc) : undefined,
      diffIds,
    };
  },
};

function parseContainerConfig(o: JsonObject): ContainerConfig {
  const what = 'config.config';
  return {
    User: optionalString(o, 'User', what, fail),
    Env: optionalStringArray(o, 'Env', what, fail),
    Entrypoint: optionalStringArray(o, 'Entrypoint', what, fail),
    Cmd: optionalStringArray(o, 'Cmd', what, fail),
    WorkingDir: optionalString(o, 'WorkingDir', what, fail),
    Volumes: objectKeys(o, 'Volumes', what),
    ExposedPorts: objectKeys(o, 'ExposedPorts', what),
    Labels: optionalStringMap(o, 'Labels', what, fail),
    StopSignal: optionalString(o, 'StopSignal', what, fail),
  };
}

function objectKeys(o: JsonObject, key: string, what: string): string[] | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw fail(`${what}.${key} must be an object`);
  return Object.keys(v);
}
