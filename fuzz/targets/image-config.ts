/**
 * Image configs (ImageConfig.parse) as a registry serves them, and what an
 * unpack makes of one: the user lookup in the image's own /etc/passwd and
 * /etc/group (read from a layer, so untrusted as well; here the input
 * itself) and the bundle's runtime spec.
 */
import { ImageConfig } from '../../src/domain/image/image-config.js';
import { buildRuntimeSpec } from '../../src/domain/runtime/runtime-spec.js';
import { parseGroup, parsePasswd, resolveUser } from '../../src/domain/runtime/user.js';
import { attempt, Finding } from '../lib/verdict.js';

const PASSWD = 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\napp:x:1000:1000::/home/app:/bin/sh\n';
const GROUP = 'root:x:0:\nnogroup:x:65534:\napp:x:1000:nobody\nwheel:x:10:app,root\n';

export function fuzz(data: Buffer): void {
  const text = data.toString('utf8');
  attempt(() => parsePasswd(text));
  attempt(() => parseGroup(text));
  attempt(() => resolveUser(text.split('\n', 1)[0], text, text));
  const config = attempt(() => ImageConfig.parse(data));
  if (!config) return;
  if (!config.os || !config.architecture) throw new Finding('a config without os or architecture parsed');
  for (const d of config.diffIds) if (!d.toString().includes(':')) throw new Finding(`diff id ${d} is not a digest`);
  const user = attempt(() => resolveUser(config.config?.User, PASSWD, GROUP));
  if (!user) return;
  const spec = buildRuntimeSpec(config, user);
  if (!Number.isSafeInteger(spec.process.user.uid) || !Number.isSafeInteger(spec.process.user.gid)) throw new Finding(`user ${JSON.stringify(spec.process.user)}`);
  JSON.stringify(spec);
}
