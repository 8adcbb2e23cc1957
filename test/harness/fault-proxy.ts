/**
 * An HTTP reverse proxy written for the tests: it sits between image-ts and a
 * real registry and injects faults into the traffic it forwards.
 *
 * Faults are programmed as rules matched by method, URL and whether the request
 * asks for a Range; a rule fires on chosen matches (skip the first `skip`, then
 * at most `times`, each with `probability` from a seeded PRNG, so a soak is
 * reproducible). Two phases:
 *
 *   request phase   `status` (answer 500/429/... without contacting upstream),
 *                   `ignore-range` (strip Range, so upstream answers 200 with the whole blob)
 *   response phase  on a 200/206 answer with a body: `reset`, `stall`, `truncate`,
 *                   `flip`, `replace`, `trickle`, `length`
 *
 * Response faults that fire together compose (e.g. trickle up to a reset); of the
 * ones that end a body early (reset, stall, truncate, length) the first wins.
 * Offsets are clamped into the body (at most its last byte), so a fault on a
 * small blob still takes effect.
 *
 * Every request is logged (method, url, range, status sent, faults applied,
 * body bytes sent) and every fault that fired is counted per kind.
 */
import { Agent, createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { seededRandom } from '../helpers/seeded-random.js';

export type Fault =
  /** Destroy the client connection (TCP RST) after `after` body bytes. */
  | { readonly kind: 'reset'; readonly after: number }
  /** Send the headers and `after` body bytes, then nothing, until the client gives up. */
  | { readonly kind: 'stall'; readonly after: number }
  /**
   * Send only `after` body bytes. `keep`: the original Content-Length, then close
   * the connection (the client sees a short read). `rewrite`: Content-Length
   * becomes `after` and the response ends cleanly (a well-formed short body).
   */
  | { readonly kind: 'truncate'; readonly after: number; readonly contentLength: 'keep' | 'rewrite' }
  /** XOR the byte at `offset` (of this response's body) with 0xff; the length is kept. */
  | { readonly kind: 'flip'; readonly offset: number }
  /** Every body byte replaced by other (PRNG) bytes: the same length, other content. */
  | { readonly kind: 'replace' }
  /** The body in `chunk`-byte pieces with `delayMs` between them. */
  | { readonly kind: 'trickle'; readonly chunk: number; readonly delayMs: number }
  /**
   * Content-Length declared as the real length + `delta`. delta > 0: the whole body is sent
   * and the connection closed (fewer bytes than declared); delta < 0: only the declared bytes are sent.
   */
  | { readonly kind: 'length'; readonly delta: number }
  /** Answer `status` without contacting upstream (Retry-After when given); wins over every other fault. */
  | { readonly kind: 'status'; readonly status: number; readonly retryAfter?: string }
  /** Forward without the Range header: upstream answers 200 with the whole body. Only fires on Range requests. */
  | { readonly kind: 'ignore-range' };

export type FaultKind = Fault['kind'];

export const FAULT_KINDS: readonly FaultKind[] = ['reset', 'stall', 'truncate', 'flip', 'replace', 'trickle', 'length', 'status', 'ignore-range'];

export interface FaultRule {
  readonly fault: Fault;
  /** Exact method; any when absent. */
  readonly method?: string;
  /** Tested against the request's path and query; any when absent. */
  readonly url?: RegExp;
  /** true: only requests with a Range header; false: only without. */
  readonly range?: boolean;
  /** Let the first `skip` matches through (`skip: n - 1, times: 1` is "only the nth"). */
  readonly skip?: number;
  /** Fire at most this many times; unlimited when absent. */
  readonly times?: number;
  /** Chance to fire on each eligible match, drawn from the proxy's seeded PRNG; 1 when absent. */
  readonly probability?: number;
}

export interface RuleHandle {
  /** Matches seen (eligible requests/responses), fired or not. */
  matched(): number;
  fired(): number;
  remove(): void;
}

export interface RequestRecord {
  readonly id: number;
  readonly method: string;
  readonly url: string;
  /** The Range header the client sent. */
  readonly range: string | undefined;
  /** The status sent to the client; undefined when none was sent (upstream unreachable and client gone). */
  status: number | undefined;
  /** What upstream answered; undefined when it was not contacted. */
  upstreamStatus: number | undefined;
  readonly faults: FaultKind[];
  /** Body bytes written to the client. */
  bytes: number;
  readonly startedAt: number;
  endedAt: number | undefined;
}

export interface FaultProxyOptions {
  /** `host:port` of the registry (plain http). */
  readonly upstream: string;
  /** Seed of the PRNG behind `probability` and `replace`; default 1. */
  readonly seed?: number;
  /** Delay before a reset, so that the bytes sent before it reach the client first. Default 30 ms. */
  readonly resetDelayMs?: number;
  /**
   * Answers some requests itself instead of upstream (e.g. an API the
   * registry lacks); resolves to the status sent, or undefined to forward.
   * Request-phase faults still win over it.
   */
  readonly intercept?: ((req: IncomingMessage, res: ServerResponse) => Promise<number | undefined>) | undefined;
}


const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection',
  'te', 'trailer', 'transfer-encoding', 'upgrade',
]);

const REQUEST_PHASE = new Set<FaultKind>(['status', 'ignore-range']);

interface LiveRule {
  readonly rule: FaultRule;
  matched: number;
  fired: number;
}

/** What a response-phase plan does to one body. */
interface BodyPlan {
  flips: number[];
  replace: boolean;
  trickle: { chunk: number; delayMs: number } | undefined;
  /** Where the body stops and how. */
  cut: { at: number; how: 'reset' | 'stall' | 'close' | 'end' } | undefined;
  /** Content-Length sent to the client; undefined: as upstream (or none). */
  declared: number | undefined;
}

export class FaultProxy {
  private server: Server | undefined;
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 64 });
  private readonly rules: LiveRule[] = [];
  private readonly log: RequestRecord[] = [];
  private readonly counts = new Map<FaultKind, number>();
  private readonly random: () => number;
  private readonly sockets = new Set<Socket>();
  private nextId = 1;
  private hostPort = '';

  constructor(private readonly options: FaultProxyOptions) {
    this.random = seededRandom(options.seed ?? 1);
  }

  /** `127.0.0.1:port` to give image-ts (and `--insecure-registry`). */
  get host(): string {
    if (!this.hostPort) throw new Error('the fault proxy is not started');
    return this.hostPort;
  }

  async start(): Promise<string> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch(() => {
        res.destroy();
      });
    });
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    server.keepAliveTimeout = 30_000;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('fault proxy has no port');
    this.server = server;
    this.hostPort = `127.0.0.1:${address.port}`;
    return this.hostPort;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    this.agent.destroy();
  }

  add(rule: FaultRule): RuleHandle {
    const live: LiveRule = { rule, matched: 0, fired: 0 };
    this.rules.push(live);
    return {
      matched: () => live.matched,
      fired: () => live.fired,
      remove: () => {
        const i = this.rules.indexOf(live);
        if (i >= 0) this.rules.splice(i, 1);
      },
    };
  }

  /** Removes every rule. */
  clearRules(): void {
    this.rules.length = 0;
  }

  /** Clears the log and the counters (rules stay). */
  resetStats(): void {
    this.log.length = 0;
    this.counts.clear();
  }

  requests(): readonly RequestRecord[] {
    return this.log;
  }

  /** How many times each kind fired. */
  faultCounts(): Record<FaultKind, number> {
    const out = {} as Record<FaultKind, number>;
    for (const k of FAULT_KINDS) out[k] = this.counts.get(k) ?? 0;
    return out;
  }

  totalFaults(): number {
    let n = 0;
    for (const v of this.counts.values()) n += v;
    return n;
  }

  /** The rules of `phase` that fire for this request, in order. Advances their counters. */
  private fire(phase: 'request' | 'response', method: string, url: string, hasRange: boolean): Fault[] {
    const out: Fault[] = [];
    for (const live of this.rules) {
      const r = live.rule;
      if (REQUEST_PHASE.has(r.fault.kind) !== (phase === 'request')) continue;
      if (r.method !== undefined && r.method !== method) continue;
      if (r.url !== undefined && !r.url.test(url)) continue;
      if (r.range !== undefined && r.range !== hasRange) continue;
      if (r.fault.kind === 'ignore-range' && !hasRange) continue;
      live.matched++;
      if (live.matched <= (r.skip ?? 0)) continue;
      if (r.times !== undefined && live.fired >= r.times) continue;
      if (r.probability !== undefined && this.random() >= r.probability) continue;
      live.fired++;
      out.push(r.fault);
    }
    return out;
  }

  private count(record: RequestRecord, kind: FaultKind): void {
    record.faults.push(kind);
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + 1);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const rangeHeader = req.headers['range'];
    const range = typeof rangeHeader === 'string' ? rangeHeader : undefined;
    const record: RequestRecord = {
      id: this.nextId++, method, url, range, status: undefined, upstreamStatus: undefined,
      faults: [], bytes: 0, startedAt: Date.now(), endedAt: undefined,
    };
    this.log.push(record);
    res.once('close', () => {
      record.endedAt = Date.now();
    });

    const requestFaults = this.fire('request', method, url, range !== undefined);
    const status = requestFaults.find((f): f is Extract<Fault, { kind: 'status' }> => f.kind === 'status');
    if (status) {
      this.count(record, 'status');
      req.resume();
      const body = Buffer.from(JSON.stringify({ errors: [{ code: 'UNKNOWN', message: `injected HTTP ${status.status}` }] }));
      const headers: Record<string, string> = { 'content-type': 'application/json', 'content-length': String(body.length) };
      if (status.retryAfter !== undefined) headers['retry-after'] = status.retryAfter;
      record.status = status.status;
      res.writeHead(status.status, headers);
      res.end(body);
      return;
    }

    const answered = await this.options.intercept?.(req, res);
    if (answered !== undefined) {
      record.status = answered;
      return;
    }

    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (v === undefined || HOP_BY_HOP.has(k)) continue;
      headers[k] = v;
    }
    headers['host'] = this.options.upstream;
    if (range !== undefined && requestFaults.some((f) => f.kind === 'ignore-range')) {
      delete headers['range'];
      this.count(record, 'ignore-range');
    }

    const [upHost, upPort] = this.options.upstream.split(':');
    const upstream = httpRequest({
      host: upHost,
      port: Number(upPort),
      method,
      path: url,
      headers,
      agent: this.agent,
    });
    res.once('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);

    let upRes: IncomingMessage;
    try {
      upRes = await new Promise<IncomingMessage>((resolve, reject) => {
        upstream.once('response', resolve);
        upstream.once('error', reject);
      });
    } catch {
      if (!res.headersSent && !res.destroyed) {
        record.status = 502;
        res.writeHead(502, { 'content-type': 'text/plain', 'content-length': '11' });
        res.end('bad gateway');
      }
      return;
    }
    upstream.on('error', () => undefined);
    upRes.on('error', () => undefined);
    const upStatus = upRes.statusCode ?? 502;
    record.upstreamStatus = upStatus;

    const outHeaders: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(upRes.headers)) {
      if (v === undefined || HOP_BY_HOP.has(k)) continue;
      outHeaders[k] = v;
    }
    const clHeader = upRes.headers['content-length'];
    const length = clHeader !== undefined && /^\d+$/.test(clHeader) ? Number(clHeader) : undefined;
    const hasBody = method !== 'HEAD' && (upStatus === 200 || upStatus === 206) && length !== 0;
    const plan = hasBody ? this.planBody(method, url, range !== undefined, length, record) : undefined;
    if (plan?.declared !== undefined) outHeaders['content-length'] = String(plan.declared);

    record.status = upStatus;
    res.writeHead(upStatus, outHeaders);
    await this.pump(upRes, res, record, plan);
  }

  /** Response-phase faults for a body of `length` bytes (undefined: unknown). */
  private planBody(method: string, url: string, hasRange: boolean, length: number | undefined, record: RequestRecord): BodyPlan | undefined {
    const faults = this.fire('response', method, url, hasRange);
    if (faults.length === 0) return undefined;
    // A cut lands inside the body, so that it always takes effect.
    const inside = (n: number): number => (length === undefined ? n : Math.max(0, Math.min(n, length - 1)));
    const plan: BodyPlan = { flips: [], replace: false, trickle: undefined, cut: undefined, declared: undefined };
    for (const f of faults) {
      switch (f.kind) {
        case 'flip':
          plan.flips.push(inside(f.offset));
          break;
        case 'replace':
          plan.replace = true;
          break;
        case 'trickle':
          plan.trickle ??= { chunk: Math.max(1, f.chunk), delayMs: f.delayMs };
          break;
        case 'reset':
        case 'stall':
          if (plan.cut) continue;
          plan.cut = { at: inside(f.after), how: f.kind };
          break;
        case 'truncate':
          if (plan.cut) continue;
          plan.cut = { at: inside(f.after), how: f.contentLength === 'keep' ? 'close' : 'end' };
          if (f.contentLength === 'rewrite') plan.declared = plan.cut.at;
          break;
        case 'length': {
          if (plan.cut || length === undefined || f.delta === 0) continue;
          const declared = Math.max(0, length + f.delta);
          plan.declared = declared;
          // More declared than sent: send everything, then close. Less: send what is declared.
          plan.cut = f.delta > 0 ? { at: length, how: 'close' } : { at: declared, how: 'end' };
          break;
        }
        default:
          continue;
      }
      this.count(record, f.kind);
    }
    return plan;
  }

  /** Copies upRes to res under `plan`, with backpressure; stops when the client goes away. */
  private async pump(upRes: IncomingMessage, res: ServerResponse, record: RequestRecord, plan: BodyPlan | undefined): Promise<void> {
    const write = (chunk: Buffer): Promise<void> => {
      if (chunk.length === 0 || res.destroyed) return Promise.resolve();
      record.bytes += chunk.length;
      return new Promise<void>((resolve) => {
        // Resolves once the bytes are handed to the socket, or when the client is gone.
        const done = (): void => {
          res.off('close', done);
          resolve();
        };
        res.once('close', done);
        res.write(chunk, done);
      });
    };
    let offset = 0;
    try {
      for await (const raw of upRes) {
        if (res.destroyed) break;
        let chunk = raw as Buffer;
        if (plan?.replace) {
          const other = Buffer.allocUnsafe(chunk.length);
          for (let i = 0; i < other.length; i++) other[i] = Math.floor(this.random() * 256);
          // Never equal by chance: every byte differs from the original.
          for (let i = 0; i < other.length; i++) if (other[i] === chunk[i]) other[i] = (other[i]! ^ 0x55) & 0xff;
          chunk = other;
        }
        if (plan && plan.flips.some((f) => f >= offset && f < offset + chunk.length)) {
          chunk = Buffer.from(chunk);
          for (const f of plan.flips) if (f >= offset && f < offset + chunk.length) chunk[f - offset] = chunk[f - offset]! ^ 0xff;
        }
        const cut = plan?.cut;
        const last = cut !== undefined && offset + chunk.length >= cut.at;
        if (last) chunk = chunk.subarray(0, cut.at - offset);
        if (plan?.trickle) {
          for (let i = 0; i < chunk.length; i += plan.trickle.chunk) {
            await write(chunk.subarray(i, i + plan.trickle.chunk));
            if (res.destroyed) break;
            await sleep(plan.trickle.delayMs);
          }
        } else {
          await write(chunk);
        }
        offset += chunk.length;
        if (last) {
          upRes.destroy();
          await this.cut(res, cut.how);
          return;
        }
      }
    } catch {
      // upstream broke: pass the break on
      res.destroy();
      return;
    }
    const cut = plan?.cut;
    if (cut && cut.how !== 'end') {
      // The body ended before the cut point (only when the length was unknown or a close after the whole body).
      await this.cut(res, cut.how);
      return;
    }
    if (!res.destroyed) res.end();
  }

  private async cut(res: ServerResponse, how: 'reset' | 'stall' | 'close' | 'end'): Promise<void> {
    const socket = res.socket;
    switch (how) {
      case 'end':
        res.end();
        return;
      case 'reset':
        // Let what was sent reach the client, then RST.
        await sleep(this.options.resetDelayMs ?? 30);
        if (socket && !socket.destroyed) socket.resetAndDestroy();
        else res.destroy();
        return;
      case 'close':
        // A FIN after a short body: the client reads fewer bytes than Content-Length said.
        await sleep(10);
        if (socket && !socket.destroyed) socket.end();
        else res.destroy();
        return;
      case 'stall':
        // Nothing more, ever; the client's idle timeout (or stop()) ends it.
        await new Promise<void>((resolve) => {
          if (res.destroyed) resolve();
          else res.once('close', () => resolve());
        });
        return;
    }
  }
}

/** Starts a fault proxy in front of `upstream`. */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const proxy = new FaultProxy(options);
  await proxy.start();
  return proxy;
}
