import { Agent, EnvHttpProxyAgent, type Dispatcher } from 'undici';

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

/**
 * The dispatcher for one remote: extra CAs for TLS to the origin (also
 * through a proxy tunnel), and the proxy unless the host is in no_proxy.
 */
export function makeDispatcher(ca: string[] | undefined, proxy: ProxySettings | undefined): Dispatcher {
  const tls = ca ? { ca } : undefined;
  if (proxy && (proxy.httpProxy || proxy.httpsProxy)) {
    return new EnvHttpProxyAgent({
      ...(proxy.httpProxy ? { httpProxy: proxy.httpProxy } : {}),
      ...(proxy.httpsProxy ? { httpsProxy: proxy.httpsProxy } : {}),
      ...(proxy.noProxy ? { noProxy: proxy.noProxy } : {}),
      ...(tls ? { connect: tls, requestTls: tls } : {}),
    });
  }
  return new Agent(tls ? { connect: tls } : {});
}
