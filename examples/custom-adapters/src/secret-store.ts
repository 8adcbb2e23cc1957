import { createServer, type Server } from 'node:http';

/** A tiny HTTP secret store for the tests: GET /secrets/<repo>/<type>/<tag>. */
export async function startSecretStore(secrets: ReadonlyMap<string, Buffer>): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? '').replace(/^\/secrets\//, ''));
    const value = req.method === 'GET' && req.url?.startsWith('/secrets/') ? secrets.get(path) : undefined;
    if (!value) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(value);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    url: `http://127.0.0.1:${address.port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
