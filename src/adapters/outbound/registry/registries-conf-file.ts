import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigFileError } from '../../../domain/errors.js';
import { mergeDropIn, RegistriesConf } from '../../../domain/registry/registries-conf.js';
import { lazyImport } from '../lazy.js';

/** Loaded on first use: only a pull configured with a registries.conf needs a TOML parser. */
const toml = lazyImport(() => import('smol-toml'));

/**
 * Reads a containers-registries.conf(5) file (TOML) and the `*.conf` drop-ins
 * of `<path>.d/` in name order (as `/etc/containers/registries.conf.d` is
 * read), into one validated RegistriesConf. Each file is validated on its
 * own first, so an error names the file at fault. A missing or unreadable
 * file, a TOML syntax error (with its line and column) or an invalid
 * setting is CONFIG_FILE_INVALID.
 */
export async function loadRegistriesConf(path: string): Promise<RegistriesConf> {
  const main = await readTable(path);
  const dropIns = await dropInFiles(`${path}.d`);
  if (dropIns.length === 0) return main.conf;
  let merged: unknown = main.table;
  for (const file of dropIns) merged = mergeDropIn(merged, (await readTable(file)).table, file);
  return RegistriesConf.fromObject(merged, `${path} with ${path}.d`);
}

/** The same, from text already read (a `kbs://` resource, say); `source` names it in messages. */
export async function parseRegistriesConf(text: string, path: string): Promise<RegistriesConf> {
  return RegistriesConf.fromObject(await parseToml(text, path), path);
}

/** One file, parsed and validated on its own, so that an error names it. */
async function readTable(path: string): Promise<{ table: unknown; conf: RegistriesConf }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ConfigFileError(`registries.conf ${path} does not exist`);
    throw new ConfigFileError(`cannot read registries.conf ${path}: ${code ?? 'read error'}`);
  }
  const table = await parseToml(text, path);
  return { table, conf: RegistriesConf.fromObject(table, path) };
}

async function dropInFiles(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw new ConfigFileError(`cannot read ${dir}: ${code ?? 'read error'}`);
  }
  // Byte order, not locale order: the same on every machine.
  return names.filter((n) => n.endsWith('.conf')).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map((n) => join(dir, n));
}

async function parseToml(text: string, path: string): Promise<unknown> {
  const { parse, TomlError } = await toml();
  try {
    return parse(text);
  } catch (err) {
    if (err instanceof TomlError) {
      const reason = (err.message.split('\n')[0] ?? '').replace(/^Invalid TOML document:\s*/, '');
      throw new ConfigFileError(`${path}: invalid TOML at line ${err.line}, column ${err.column}: ${reason}`);
    }
    const reason = err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err);
    throw new ConfigFileError(`${path}: invalid TOML: ${reason}`);
  }
}
