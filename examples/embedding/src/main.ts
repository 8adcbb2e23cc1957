/**
 * Embeds image-ts: pulls a Confidential Containers image (its layer key is
 * wrapped in an AnnotationPacket whose key-encryption key lives in an HTTP
 * secret store) into a bundle, reporting progress, with a key broker and an
 * Attestation Agent of its own; then starts a second pull and aborts it
 * midway.
 *
 *   node dist/embedding/src/main.js WORK_DIR COCO_IMAGE BUNDLE OTHER_IMAGE SECRET_STORE_URL EVENT_LOG
 *
 * Prints one JSON object: what the pull resolved to, the progress it saw,
 * how the aborted pull ended, and whether it left anything behind.
 */
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createImageService, ImageTsError, type ProgressEvent } from 'image-ts';
import { HttpSecretBroker } from '../../custom-adapters/src/http-secret-broker.js';
import { JsonlAttestationAgent } from '../../custom-adapters/src/jsonl-attestation-agent.js';

const [workDir, cocoImage, bundle, otherImage, storeUrl, eventLog] = process.argv.slice(2);
if (!workDir || !cocoImage || !bundle || !otherImage || !storeUrl || !eventLog) {
  process.stderr.write('usage: main.js WORK_DIR COCO_IMAGE BUNDLE OTHER_IMAGE SECRET_STORE_URL EVENT_LOG\n');
  process.exit(2);
}

const service = await createImageService({
  config: { work_dir: workDir, snapshotter: 'copy' },
  adapters: { keyBroker: new HttpSecretBroker(storeUrl), attestationAgent: new JsonlAttestationAgent(eventLog) },
});
try {
  const progress: string[] = [];
  const pulled = await service.pull(cocoImage, bundle, {
    onProgress: (e: ProgressEvent) => {
      if (e.type === 'layer-state') progress.push(`${e.state}`);
      if (e.type === 'done') progress.push('done');
    },
  });

  // A second pull, given up as soon as its first layer starts.
  const controller = new AbortController();
  const second = join(dirname(bundle), 'aborted-bundle');
  const aborted = await service.pull(otherImage, second, {
    signal: controller.signal,
    onProgress: (e) => {
      if (e.type === 'layer-bytes') controller.abort(new Error('the embedder gave up'));
    },
  }).then(() => 'completed', (err: unknown) => (err instanceof ImageTsError ? err.code : 'not an ImageTsError'));

  process.stdout.write(`${JSON.stringify({
    pulled,
    progress,
    aborted,
    leftBehind: existsSync(second),
    staging: readdirSync(join(workDir, 'staging')),
    images: (await service.list()).map((i) => i.names).flat(),
  })}\n`);
} finally {
  await service.close();
}
