import { readFile } from 'node:fs/promises';
import { ConfigFileError } from '../../../domain/errors.js';
import { RegistriesConf } from '../../../domain/registry/registries-conf.js';
import { lazyModule } from '../lazy-module.js';

/** Loaded on first use: only a pull configured with a registries.conf needs a TOML parser. */
const toml = lazyModule(() => import('smol-toml'));

/**
 * Reads one containers-registries.conf(5) file (TOML) into a validated
 * RegistriesConf. A missing or unreadable file, a TOML syntax error (reported
 * with its line and column) or an invalid setting is CONFIG_FILE_INVALID.
 */
export async function loadRegistriesConf(path: string): Promise<RegistriesConf> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ConfigFileError(`registries.conf ${path} does not exist`);
    throw new ConfigFileError(`cannot read registries.conf ${path}: ${code ?? 'read error'}`);
  }
  return parseRegistriesConf(text, path);
}

/** The same, from text already read (a `kbs://` resource, say); `source` names it in messages. */
export async function parseRegistriesConf(text: string, path: string): Promise<RegistriesConf> {
  const { parse, TomlError } = await toml();
  let parsed: unknown;
  try {
    parsed = parse(text);
  } catch (err) {
    if (err instanceof TomlError) {
      const reason = (err.message.split('\n')[0] ?? '').replace(/^Invalid TOML document:\s*/, '');
      throw new ConfigFileError(`${path}: invalid TOML at line ${err.line}, column ${err.column}: ${reason}`);
    }
    const reason = err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err);
    throw new ConfigFileError(`${path}: invalid TOML: ${reason}`);
  }
  return RegistriesConf.fromObject(parsed, path);
}
