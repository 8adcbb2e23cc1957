import { Agent, EnvHttpProxyAgent, type Dispatcher } from './undici.js';

/** image-rs's `image_pull_proxy`, or the standard environment variables. */
export interface ProxySettings {
  readonly httpProxy?: string | undefined;
  readonly httpsProxy?: string | undefined;
  /** Comma-separated hosts (and `.domain` suffixes) reached directly. */
  readonly noProxy?: string | undefined;
}

/** HTTPS_PROXY, HTTP_PROXY and NO_PROXY, in either case; undefined when neither proxy is set. */
export function proxyFromEnv(env: NodeJS.ProcessEnv): ProxySettings | undefined {
  const pick = (name: string): string | undefined => env[name.toLowerCase()] || env[name.toUpperCase()] || undefined;
  const settings = { httpProxy: pick('http_proxy'), httpsProxy: pick('https_proxy'), noProxy: pick('no_proxy') };
  return settings.httpProxy || settings.httpsProxy ? settings : undefined;
}

export interface HttpTimeouts {
  /** Establishing a connection (TCP and TLS). */
  readonly connectMs?: number | undefined;
  /** Waiting for response headers, and then between body chunks: a stalled blob ends here. */
  readonly idleReadMs?: number | undefined;
}

/**
 * The dispatcher for one remote: extra CAs for TLS to the origin (also
 * through a proxy tunnel), the proxy unless the host is in no_proxy, and the
 * timeouts. `verify: false` accepts any certificate (an insecure registry).
 */
export function makeDispatcher(
  ca: string[] | undefined,
  proxy: ProxySettings | undefined,
  timeouts: HttpTimeouts = {},
  tls: { readonly verify: boolean } = { verify: true },
): Dispatcher {
  const connect = {
    ...(ca ? { ca } : {}),
    ...(timeouts.connectMs ? { timeout: timeouts.connectMs } : {}),
    // Only for registries the user marked insecure, as containers/image does for them.
    ...(tls.verify ? {} : { rejectUnauthorized: false }),
  };
  const idle = timeouts.idleReadMs ? { headersTimeout: timeouts.idleReadMs, bodyTimeout: timeouts.idleReadMs } : {};
  if (proxy && (proxy.httpProxy || proxy.httpsProxy)) {
    return new EnvHttpProxyAgent({
      ...(proxy.httpProxy ? { httpProxy: proxy.httpProxy } : {}),
      ...(proxy.httpsProxy ? { httpsProxy: proxy.httpsProxy } : {}),
      ...(proxy.noProxy ? { noProxy: proxy.noProxy } : {}),
      connect,
      ...(ca || !tls.verify ? { requestTls: { ...(ca ? { ca } : {}), ...(tls.verify ? {} : { rejectUnauthorized: false }) } } : {}),
      ...idle,
    });
  }
  return new Agent({ connect, ...idle });
}
