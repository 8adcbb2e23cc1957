/// <reference path="../../../types/undici-internals.d.ts" preserve="true" />
import type { Dispatcher as DispatcherType } from 'undici';
import Agent from 'undici/lib/dispatcher/agent.js';
import Dispatcher from 'undici/lib/dispatcher/dispatcher.js';
import EnvHttpProxyAgent from 'undici/lib/dispatcher/env-http-proxy-agent.js';
import api from 'undici/lib/api/index.js';

/*
 * undici's index loads all of undici: fetch, WebSocket, caches, mocks. Its
 * cookie module touches globalThis.Headers, which makes Node load its own
 * copy of undici too. That is about 70 ms of every CLI start (bench/NOTES.md),
 * for code image-ts never runs. These are the parts it does run, wired as
 * undici's index wires them.
 */
Object.assign(Dispatcher.prototype, api);

export { Agent, EnvHttpProxyAgent };
export type { DispatcherType as Dispatcher };

export interface RequestOptions {
  readonly dispatcher: DispatcherType;
  readonly method: 'GET' | 'POST' | 'PUT' | 'HEAD';
  readonly headers?: Record<string, string> | undefined;
  readonly body?: string | Buffer | undefined;
  readonly signal?: AbortSignal | undefined;
}

/** undici's `request(url, opts)`, always through the dispatcher given. */
export function request(url: URL | string, o: RequestOptions): Promise<DispatcherType.ResponseData> {
  const u = typeof url === 'string' ? new URL(url) : url;
  return o.dispatcher.request({
    origin: u.origin,
    path: u.search ? `${u.pathname}${u.search}` : u.pathname,
    method: o.method,
    headers: o.headers,
    body: o.body,
    signal: o.signal,
  });
}
