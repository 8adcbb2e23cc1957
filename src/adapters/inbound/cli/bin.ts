import { main } from './main.js';

// Last-resort guards: a user sees one line with a code, never a stack trace.
process.on('uncaughtException', (err: Error) => {
  process.stderr.write(`image-ts: INTERNAL: ${err.message.split('\n')[0]}\n`);
  process.exit(1);
});
process.on('unhandledRejection', (err: unknown) => {
  process.stderr.write(`image-ts: INTERNAL: ${String(err instanceof Error ? err.message : err).split('\n')[0]}\n`);
  process.exit(1);
});

// No top-level await: the built CLI is a CommonJS script, so that it can run from a V8 code cache.
void main(process.argv.slice(2)).then((code) => {
  // The command is done: exit once the output is flushed, rather than wait for
  // idle keep-alive timers of the HTTP client (measured: 240 ms of a warm pull).
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
});
