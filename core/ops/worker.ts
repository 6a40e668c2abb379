/**
 * One worker's operations side: its metrics and its access log, fed by the request pipeline,
 * the TLS listener and the config store, and read by the primary's scrape over cluster IPC.
 *
 * The request pipeline calls `ops.request(...)` once per finished request; the TLS listener calls
 * `ops.handshake(...)` once per handshake and `ops.clientCertFailure(...)` once per refused
 * client certificate (at the handshake or at the request). Those three are the hot path: they
 * increment in-memory series and append one buffered log line, nothing else.
 */
import { hostname } from 'node:os'
import type { LocalConfig } from '../config/local-schema.js'
import type { Rejected } from '../config/apply.js'
import type { Snapshot } from '../config/snapshot.js'
import type { SyncState } from '../config/store.js'
import type { Logger } from '../log.js'
import type { MetricsSnapshot } from '../metrics/registry.js'
import { workerInbox } from '../server/ipc.js'
import { createAccessLog } from '../access-log.js'
import { parseCertPem } from '../x509/cert.js'
import { crlReportRows } from '../x509/crl.js'
import { RESOURCES } from '../etcd/keys.js'
import { createGatewayMetrics, type ClientCertFailureReason, type GatewayMetrics, type HandshakeResult } from '../metrics/gateway.js'
import { createExpiryTracker } from './expiry.js'
import { accessEntry, factsOfRecord, type RequestFacts } from './request.js'
import type { RequestRecord } from '../pipeline/handle.js'
import { tlsFactsOf } from '../tls/facts.js'
import { packageVersion } from '../version.js'

export type { RequestFacts } from './request.js'
export type { ClientCertFailureReason, HandshakeResult } from '../metrics/gateway.js'

/** What the request pipeline and the TLS listener report (they receive this object, typed). */
export interface Ops {
  /** One finished request: counts its status and latencies, writes its access-log line. */
  request(f: RequestFacts): void
  /** The same, from the request handler's record (core/pipeline/handle.ts `onRequest`). */
  onRequest(r: RequestRecord): void
  /** One TLS handshake outcome, for an ssl object ('' when none matched) and SNI ('' when none). */
  handshake(sslId: string, sni: string, result: HandshakeResult): void
  /** One refused client certificate, at the handshake or at the request. */
  clientCertFailure(sslId: string, sni: string, reason: ClientCertFailureReason): void
}

/** The generation fields the expiry gauge reads. */
interface HasSnapshot {
  readonly snapshot: Snapshot
}

/** A worker's Ops plus the hooks main.ts wires. */
export interface WorkerOps extends Ops {
  readonly metrics: GatewayMetrics
  /** Pass to createStore: counts refused objects, follows certificate changes. */
  readonly storeHooks: {
    onRejected(r: Rejected): void
    onPublish(next: HasSnapshot, prev: HasSnapshot): void
  }
  /** Gives the etcd gauges their source, read at scrape time. */
  attach(state: () => SyncState): void
  /** The metrics as plain data, etcd gauges refreshed. */
  snapshot(): MetricsSnapshot
  /** Resolves once the expiry gauge reflects the latest published generation. */
  settled(): Promise<void>
  /** Reopens the access log file by name (log rotation: SIGUSR1). */
  reopenLog(): void
  /** Flushes and closes the access log. */
  close(): Promise<void>
}

/** Options of createOps; `baseDir` resolves a relative access-log path (default: the cwd). */
export interface OpsOptions {
  readonly config: LocalConfig
  readonly log: Logger
  readonly baseDir?: string
  readonly hostname?: string
  readonly version?: string
}

/**
 * Creates one worker's metrics and access log (opening the log file; a path that cannot be
 * opened throws GW_ACCESS_LOG_OPEN, a start-up error) and sets `apisix_node_info`.
 */
export function createOps(o: OpsOptions): WorkerOps {
  const metrics = createGatewayMetrics()
  metrics.nodeInfo(o.hostname ?? hostname(), o.version ?? packageVersion())
  const logConf = o.config.apisix.access_log
  const accessLog = createAccessLog(logConf, o.baseDir ?? process.cwd(), (err) => o.log.error({ err }, 'access log write failed'))
  const logging = logConf.enable
  let state: (() => SyncState) | undefined
  const expiry = createExpiryTracker({
    parse: parseCertPem,
    parseCrls: crlReportRows,
    publish: (records) => metrics.setExpiry(records),
    onSkip: (s) => o.log.debug({ kind: s.kind, id: s.id, reason: s.reason }, 'certificate left out of the expiry gauge'),
    defer: (fn) => void setImmediate(fn),
    clock: () => performance.now(),
  })

  const request = (f: RequestFacts): void => {
    const route = f.route ?? ''
    metrics.httpStatus({ code: f.status, route, method: f.method, consumer: f.consumer ?? '', sni: f.sni ?? '' })
    metrics.latency('request', route, f.latencyMs)
    if (f.upstreamLatencyMs !== null) metrics.latency('upstream', route, f.upstreamLatencyMs)
    if (logging) accessLog.write(accessEntry(f))
  }

  return {
    metrics,
    request,
    onRequest(r) {
      const tls = tlsFactsOf(r.req.socket)
      // a request the mTLS gate refused counts as a client-certificate failure, like a refused handshake
      if (r.gateReason !== undefined && tls !== undefined && isFailureReason(r.gateReason)) metrics.clientCertFailure(tls.sslId, tls.matchSni, r.gateReason)
      request(factsOfRecord(r, tls, Date.now()))
    },
    handshake: (sslId, sni, result) => metrics.handshake(sslId, sni, result),
    clientCertFailure: (sslId, sni, reason) => metrics.clientCertFailure(sslId, sni, reason),
    storeHooks: {
      onRejected: (r) => metrics.configRejected(r.resource),
      onPublish(next, prev) {
        const a = next.snapshot.objects
        const b = prev.snapshot.objects
        // apply.ts copies a resource's map only when that resource changed
        if (a.ssls === b.ssls && a.consumers === b.consumers) return
        // the tracker diffs these maps with the last ones it read: it reads only changed objects
        expiry.update({ ssls: a.ssls, consumers: a.consumers })
      },
    },
    attach(s) {
      state = s
    },
    snapshot() {
      if (state !== undefined) refreshEtcd(metrics, state())
      return metrics.snapshot()
    },
    settled: () => expiry.idle(),
    reopenLog: () => accessLog.reopen(),
    async close() {
      await expiry.idle()
      await accessLog.close()
    },
  }
}

const FAILURE_REASONS: ReadonlySet<string> = new Set<ClientCertFailureReason>(['no_certificate', 'untrusted', 'expired', 'depth', 'revoked', 'crl_expired', 'sni_host_mismatch'])
const isFailureReason = (s: string): s is ClientCertFailureReason => FAILURE_REASONS.has(s)

function refreshEtcd(metrics: GatewayMetrics, s: SyncState): void {
  metrics.etcdReachable(s.reachable)
  for (const r of RESOURCES) metrics.etcdModifyIndex(r, s.modifyIndexes[r] ?? '0')
  // APISIX's name for the newest revision applied, whatever the resource
  metrics.etcdModifyIndex('max_modify_index', s.revision)
  if (s.lastEventMs > 0) metrics.etcdLastEvent(s.lastEventMs / 1000)
}

/**
 * Creates the worker's Ops and answers the primary's `metrics` ask with this worker's snapshot
 * (the primary merges every worker's and renders the scrape).
 */
export function startOps(o: OpsOptions): WorkerOps {
  const ops = createOps(o)
  workerInbox().answer('metrics', () => ops.snapshot())
  return ops
}
