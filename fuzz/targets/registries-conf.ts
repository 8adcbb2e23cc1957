/**
 * registries.conf: TOML as a file or a `kbs://` resource gives it
 * (parseRegistriesConf), the same bytes as image-rs's inline JSON
 * (RegistriesConf.fromObject), a drop-in merged onto itself, and what a
 * pull asks of the result: where each of a few references is pulled from
 * and what short names expand to.
 */
import { parseRegistriesConf } from '../../src/adapters/outbound/registry/registries-conf-file.js';
import { Reference } from '../../src/domain/image/reference.js';
import { expandShortName, findRegistry, mergeDropIn, pullSources, RegistriesConf } from '../../src/domain/registry/registries-conf.js';
import { attempt, attemptAsync, Finding } from '../lib/verdict.js';

const REFS = ['busybox', 'docker.io/library/busybox:1', 'quay.io/org/app@sha256:' + 'cd'.repeat(32), 'localhost:5000/a/b:c', 'example.com/x'];

function use(conf: RegistriesConf): void {
  for (const input of REFS) {
    const ref = Reference.parse(input);
    findRegistry(conf, ref);
    const sources = attempt(() => pullSources(conf, ref));
    if (sources && sources.length === 0) throw new Finding(`no pull source for ${input}`);
    const names = attempt(() => expandShortName(conf, input));
    if (names) for (const n of names) attempt(() => Reference.parse(n)) ?? (() => { throw new Finding(`short name ${input} expanded to ${n}`); })();
  }
}

export async function fuzz(data: Buffer): Promise<void> {
  const text = data.toString('utf8');
  const conf = await attemptAsync(() => parseRegistriesConf(text, 'fuzz.conf'));
  if (conf) use(conf);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return;
  }
  const inline = attempt(() => RegistriesConf.fromObject(json, 'registry_config'));
  if (!inline) return;
  use(inline);
  const merged = attempt(() => mergeDropIn(json, json, 'fuzz.conf.d/self.conf'));
  if (merged) attempt(() => RegistriesConf.fromObject(merged, 'merged'));
}
