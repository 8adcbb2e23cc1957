/**
 * npm run demo: builds a small image into an OCI layout (and pushes it to a
 * local docker-registry when one is installed), then pulls it into bundles
 * with the CLI, showing each step. Offline; everything stays under .tmp/demo.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { startRegistry } from '../test/harness/registry.js';
import { ROOT } from '../test/helpers/cli.js';
import { unmountBelow } from '../test/helpers/mounts.js';
import { buildImage, imageManifestEntry, writeOciLayout } from '../test/helpers/image-builder.js';
import { tar, type TarEntry } from '../test/helpers/tar-writer.js';

const DEMO = join(ROOT, '.tmp', 'demo');
const WORK = join(DEMO, 'store');
const BIN = join(ROOT, 'bin', 'image-ts.js');

function step(text: string): void {
  process.stdout.write(`\n\x1b[1m== ${text}\x1b[0m\n`);
}

function run(args: string[]): string {
  process.stdout.write(`$ image-ts ${args.map((a) => (a.includes(' ') ? JSON.stringify(a) : a)).join(' ')}\n`);
  const out = execFileSync(process.execPath, [BIN, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  process.stdout.write(out);
  return out;
}

async function main(): Promise<void> {
  // A demo stopped half-way may have left overlay mounts; they would block the fresh start.
  unmountBelow(DEMO);
  await rm(DEMO, { recursive: true, force: true });
  await mkdir(DEMO, { recursive: true });

  step('1. Build a two-layer demo image into an OCI layout');
  const busybox = existsSync('/bin/busybox') ? await readFile('/bin/busybox') : undefined;
  const baseEntries: TarEntry[] = [
    { name: 'etc/', type: 'dir' },
    { name: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\ndemo:x:1000:1000:demo:/home/demo:/bin/sh\n' },
    { name: 'etc/group', content: 'root:x:0:\ndemo:x:1000:\n' },
    { name: 'hello.txt', content: 'hello from image-ts\n' },
    { name: 'old-notes.txt', content: 'this file is deleted by the next layer\n' },
    ...(busybox ? [{ name: 'bin/', type: 'dir' as const }, { name: 'bin/busybox', content: busybox, mode: 0o755 }, { name: 'bin/sh', type: 'symlink' as const, linkname: 'busybox' }] : []),
  ];
  const topEntries: TarEntry[] = [
    { name: '.wh.old-notes.txt', content: '' },
    { name: 'app/', type: 'dir' },
    { name: 'app/greeting', content: 'layer two was here\n' },
  ];
  const image = buildImage({
    layers: [{ tar: tar(baseEntries) }, { tar: tar(topEntries), compression: 'zstd' }],
    config: { User: 'demo', Cmd: busybox ? ['/bin/busybox', 'cat', '/hello.txt'] : ['/hello.txt'], Env: ['GREETING=hi'], WorkingDir: '/app' },
  });
  const layout = join(DEMO, 'layout');
  await writeOciLayout(layout, [imageManifestEntry(image, 'demo')]);
  process.stdout.write(`layout ${layout}\n  manifest ${image.manifestDigest}\n  layers: gzip (base${busybox ? ' + static busybox' : ''}), zstd (a whiteout and /app)\n`);

  step('2. Pull it from the layout into a bundle (every digest is checked)');
  const bundle1 = join(DEMO, 'bundle-from-layout');
  run(['pull', `oci:${layout}:demo`, bundle1, '--work-dir', WORK]);
  process.stdout.write(`rootfs: ${(await readdir(join(bundle1, 'rootfs'))).sort().join(' ')}\n`);
  process.stdout.write(`/hello.txt: ${await readFile(join(bundle1, 'rootfs', 'hello.txt'), 'utf8')}`);
  process.stdout.write(`old-notes.txt deleted by the whiteout: ${!existsSync(join(bundle1, 'rootfs', 'old-notes.txt'))}\n`);
  const spec = JSON.parse(await readFile(join(bundle1, 'config.json'), 'utf8')) as { process: { user: unknown; args: string[]; cwd: string } };
  process.stdout.write(`config.json: user ${JSON.stringify(spec.process.user)} (User "demo" resolved through /etc/passwd), args ${JSON.stringify(spec.process.args)}, cwd ${spec.process.cwd}\n`);
  if (busybox && process.getuid?.() === 0) {
    // Run the image's own command from config.json, as a runtime would (minus the namespaces).
    const out = execFileSync('chroot', [join(bundle1, 'rootfs'), ...spec.process.args], { encoding: 'utf8' });
    process.stdout.write(`chroot rootfs ${spec.process.args.join(' ')}: ${out}`);
  }

  const registry = existsSync('/usr/bin/docker-registry') && existsSync('/usr/bin/skopeo') ? await startRegistry('open') : undefined;
  if (registry) {
    try {
      step(`3. Push it to a local docker-registry (${registry.host}) with skopeo, and pull it from there`);
      execFileSync('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:demo`, `docker://${registry.host}/demo/hello:1.0`], { stdio: 'inherit' });
      const bundle2 = join(DEMO, 'bundle-from-registry');
      run(['pull', `${registry.host}/demo/hello:1.0`, bundle2, '--work-dir', WORK, '--insecure-registry', registry.host]);
      process.stdout.write('(both layers came from the store: they were verified and committed once)\n');
    } finally {
      await registry.stop();
    }
  } else {
    step('3. (skipped: docker-registry and skopeo are not installed; npm test installs them)');
  }

  step('4. What the store holds');
  run(['list', '--work-dir', WORK]);
  run(['inspect', image.manifestDigest, '--work-dir', WORK]);

  step('5. Clean up: remove bundles, the image, and collect unused layers');
  for (const b of (await readdir(DEMO)).filter((n) => n.startsWith('bundle-'))) run(['bundle', 'rm', join(DEMO, b), '--work-dir', WORK]);
  for (const line of JSON.parse(run(['list', '--work-dir', WORK, '--json'])) as { manifestDigest: string }[]) {
    run(['rm', line.manifestDigest, '--work-dir', WORK]);
  }
  run(['gc', '--work-dir', WORK]);
  process.stdout.write('\ndemo done\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
