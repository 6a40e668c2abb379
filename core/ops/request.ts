/**
 * Pure: what the request pipeline reports when a response is done, and the access-log line
 * built from it (CONTRACT.md "Operations").
 */
import type { AccessLogEntry } from '../access-log.js'
import type { RequestRecord } from '../pipeline/handle.js'
import type { TlsFacts } from '../tls/facts.js'

/** The facts of one finished request. `null` where a fact does not apply. */
export interface RequestFacts {
  /** Epoch ms when the request arrived (the log's `time`). */
  readonly startMs: number
  readonly remoteAddr: string
  readonly method: string
  /** The request target as received ($request_uri). */
  readonly uri: string
  readonly status: number
  /** The matched route's id; null when no route matched. */
  readonly route: string | null
  /** The upstream node contacted last, host:port; null when none was. */
  readonly upstream: string | null
  readonly latencyMs: number
  readonly upstreamLatencyMs: number | null
  /** The TLS server name; null on plain HTTP or when the client sent none. */
  readonly sni: string | null
  /** `TLSv1.3` etc.; null on plain HTTP. */
  readonly tlsVersion: string | null
  /** `SUCCESS`, `FAILED:reason` or `NONE` ($ssl_client_verify). */
  readonly clientVerify: string
  readonly clientSDn: string | null
  readonly clientSerial: string | null
  readonly consumer: string | null
  /** `1.0`, `1.1` or `2` */
  readonly httpVersion: string
  /** the gRPC status the upstream answered (grpc-status); undefined on routes that are not gRPC, null when none came */
  readonly grpcStatus?: string | null
}

/** The second `isoTime` formatted last, and its text up to the milliseconds. */
let isoSecond = NaN
let isoPrefix = ''

/**
 * `new Date(ms).toISOString()`, the date and time up to the second made once a second (a line
 * per request asks for the same second thousands of times).
 */
export function isoTime(ms: number): string {
  const second = Math.floor(ms / 1000)
  if (second !== isoSecond) {
    const full = new Date(ms).toISOString()
    // a year outside 0000-9999 is written another way: not cached
    if (full.length !== 24) return full
    isoSecond = second
    isoPrefix = full.slice(0, 20)
  }
  const milli = ms - second * 1000
  return `${isoPrefix}${milli < 10 ? '00' : milli < 100 ? '0' : ''}${Math.floor(milli)}Z`
}

/** The access-log entry for one request. */
export function accessEntry(f: RequestFacts): AccessLogEntry {
  return {
    time: isoTime(f.startMs),
    remote_addr: f.remoteAddr,
    method: f.method,
    uri: f.uri,
    status: f.status,
    route_id: f.route,
    upstream: f.upstream,
    latency_ms: f.latencyMs,
    upstream_latency_ms: f.upstreamLatencyMs,
    sni: f.sni,
    tls_version: f.tlsVersion,
    client_verify: f.clientVerify,
    client_s_dn: f.clientSDn,
    client_serial: f.clientSerial,
    consumer: f.consumer,
    http_version: f.httpVersion,
    ...(f.grpcStatus !== undefined ? { grpc_status: f.grpcStatus } : {}),
  }
}

/** nginx's status for a request whose client went away before the response: 499. */
const CLIENT_CLOSED = 499

/**
 * The facts of one request as the pipeline reports it (core/pipeline/handle.ts), with the TLS
 * facts of its connection (undefined on plain HTTP) and the clock at the end of the request.
 * A certificate from a trusted proxy's header (on the request context) wins over the
 * connection's own.
 */
export function factsOfRecord(r: RequestRecord, tls: TlsFacts | undefined, nowMs: number): RequestFacts {
  const cert = r.ctx?.clientCert ?? tls?.clientCert
  const up = r.upstream
  const facts: { -readonly [K in keyof RequestFacts]: RequestFacts[K] } = {
    startMs: r.startMs,
    remoteAddr: r.ctx?.remoteAddr ?? r.req.socket.remoteAddress ?? '',
    method: r.req.method ?? '',
    uri: r.req.url ?? '/',
    status: r.status === 0 ? CLIENT_CLOSED : r.status,
    route: r.route?.id ?? null,
    upstream: up?.node ?? null,
    latencyMs: nowMs - r.startMs,
    upstreamLatencyMs: up?.node === undefined ? null : up.upstreamMs,
    sni: tls?.sni ?? null,
    tlsVersion: tls?.protocol ?? null,
    clientVerify: cert?.verify ?? tls?.verify ?? 'NONE',
    clientSDn: cert?.subjectDn ?? null,
    clientSerial: cert?.serial ?? null,
    consumer: r.ctx?.consumer?.username ?? null,
    httpVersion: r.req.httpVersion === '2.0' ? '2' : (r.req.httpVersion ?? '1.1'),
  }
  // set, not spread into the literal: a spread copies through the runtime on every request
  if (r.route?.upstream?.grpc) facts.grpcStatus = up?.grpcStatus ?? null
  return facts
}
