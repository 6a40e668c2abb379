/**
 * The gateway's metric families (CONTRACT.md "Operations"), kept per worker process. Callers
 * use the typed methods below, so a family or label name cannot be misspelt; the primary merges
 * the workers' snapshots with core/metrics/exposition.ts and renders one scrape.
 *
 * How gauges combine across workers (every worker watches the same etcd):
 * - `apisix_etcd_reachable`: min, so 1 means every worker reaches etcd.
 * - `apisix_etcd_modify_indexes`: min, the revision every worker has applied.
 * - `apisix_etcd_last_event_timestamp_seconds`: max, the newest event any worker saw.
 * - `apisix_ssl_certificate_expiry_timestamp_seconds`: max over the union of series, so a worker
 *   that has not loaded its config yet hides nothing.
 * - `apisix_node_info`: max (each worker reports the same series with value 1).
 */
import type { CertKind, CertRecord } from '../x509/records.js'
import { Counter, Gauge, Histogram, OVERFLOW_LABEL, type FamilyOptions, type FamilySnapshot, type MetricsSnapshot, type ValueSeries } from './registry.js'

/** APISIX's default latency buckets (ms), from its prometheus plugin. */
export const DEFAULT_LATENCY_BUCKETS: readonly number[] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000]

/** Labels of `apisix_http_status`; '' where there is none (no route, no consumer, plain HTTP). */
export interface HttpStatusLabels {
  readonly code: number
  readonly route: string
  readonly method: string
  readonly consumer: string
  readonly sni: string
}

/** `result` of `apisix_tls_handshakes_total`. */
export type HandshakeResult = 'ok' | 'resumed' | 'refused' | 'error'

/** `reason` of `apisix_client_cert_failures_total`. */
export type ClientCertFailureReason = 'no_certificate' | 'untrusted' | 'expired' | 'depth' | 'revoked' | 'crl_expired' | 'sni_host_mismatch'

/** `type` of `apisix_http_latency`. */
export type LatencyType = 'request' | 'upstream'

/** One worker's metrics. */
export interface GatewayMetrics {
  /** Counts one response in `apisix_http_status`. */
  httpStatus(labels: HttpStatusLabels): void
  /** Observes one duration in ms in `apisix_http_latency`. */
  latency(type: LatencyType, route: string, ms: number): void
  /** Counts one TLS handshake outcome for an ssl object ('' when none matched) and SNI. */
  handshake(sslId: string, sni: string, result: HandshakeResult): void
  /** Counts one client-certificate refusal, at the handshake or at the request. */
  clientCertFailure(sslId: string, sni: string, reason: ClientCertFailureReason): void
  /**
   * Replaces the whole expiry gauge set with these certificates, read at the next snapshot (a
   * lazy view must stay valid until the next setExpiry).
   */
  setExpiry(records: Iterable<CertRecord>): void
  /** Sets `apisix_etcd_reachable`. */
  etcdReachable(up: boolean): void
  /** Sets the last applied etcd revision for one resource key (e.g. `routes`). */
  etcdModifyIndex(key: string, revision: number | bigint | string): void
  /** Sets the time of the last etcd event, in epoch seconds. */
  etcdLastEvent(epochSeconds: number): void
  /** Counts objects of `resource` the data plane refused. */
  configRejected(resource: string, count?: number): void
  /** Sets `apisix_node_info{hostname, version} 1` (replacing any earlier pair). */
  nodeInfo(hostname: string, version: string): void
  /** Everything above as JSON-safe plain data, for cluster IPC. */
  snapshot(): MetricsSnapshot
}

/** Creates one process's families, empty. */
export function createGatewayMetrics(): GatewayMetrics {
  const status = new Counter({ name: 'apisix_http_status', help: 'HTTP status codes per route in APISIX', labelNames: ['code', 'route', 'method', 'consumer', 'sni'] })
  const latency = new Histogram({
    name: 'apisix_http_latency',
    help: 'HTTP request latency in milliseconds per route in APISIX',
    labelNames: ['type', 'route'],
    buckets: DEFAULT_LATENCY_BUCKETS,
  })
  const handshakes = new Counter({ name: 'apisix_tls_handshakes_total', help: 'TLS handshakes per ssl object, SNI and result', labelNames: ['ssl_id', 'sni', 'result'] })
  const certFailures = new Counter({
    name: 'apisix_client_cert_failures_total',
    help: 'Client certificates refused, at the handshake or at the request, per ssl object, SNI and reason',
    labelNames: ['ssl_id', 'sni', 'reason'],
  })
  const expiry = expiryGauge({
    name: 'apisix_ssl_certificate_expiry_timestamp_seconds',
    help: 'Not-after time of every server certificate, client CA and consumer certificate, in epoch seconds',
    // A consumer's series carries `consumer` in place of `ssl_id` (CONTRACT.md): the unused one is '' and left out.
    labelNames: ['kind', 'ssl_id', 'consumer', 'sni', 'subject'],
    optional: ['ssl_id', 'consumer'],
    maxSeries: 1_000_000,
  })
  const crlNextUpdate = expiryGauge({
    name: 'apisix_ssl_crl_next_update_timestamp_seconds',
    help: "nextUpdate of every CRL of the ssl objects' client.crl, in epoch seconds",
    labelNames: ['ssl_id', 'issuer'],
    maxSeries: 1_000_000,
    crl: true,
  })
  const reachable = new Gauge({ name: 'apisix_etcd_reachable', help: 'Config server etcd can be reached or not (1 or 0)', labelNames: [], merge: 'min' })
  const modifyIndexes = new Gauge({ name: 'apisix_etcd_modify_indexes', help: 'Last applied etcd revision per resource', labelNames: ['key'], merge: 'min' })
  const lastEvent = new Gauge({
    name: 'apisix_etcd_last_event_timestamp_seconds',
    help: 'Time of the last etcd event applied, in epoch seconds',
    labelNames: [],
    merge: 'max',
  })
  const rejected = new Counter({ name: 'apisix_config_rejected_total', help: 'Objects in etcd the data plane refused, per resource', labelNames: ['resource'] })
  const nodeInfo = new Gauge({ name: 'apisix_node_info', help: 'Info of APISIX node', labelNames: ['hostname', 'version'], merge: 'max' })

  return {
    httpStatus: (l) => status.inc([l.code, l.route, l.method, l.consumer, l.sni]),
    latency: (type, route, ms) => latency.observe([type, route], ms),
    handshake: (sslId, sni, result) => handshakes.inc([sslId, sni, result]),
    clientCertFailure: (sslId, sni, reason) => certFailures.inc([sslId, sni, reason]),
    setExpiry: (records) => {
      expiry.replace(records)
      crlNextUpdate.replace(records)
    },
    etcdReachable: (up) => reachable.set([], up ? 1 : 0),
    // A gauge is a float64: exact for revisions below 2^53, far beyond any etcd's.
    etcdModifyIndex: (key, revision) => modifyIndexes.set([key], Number(revision)),
    etcdLastEvent: (secs) => lastEvent.set([], secs),
    configRejected: (resource, count = 1) => rejected.inc([resource], count),
    nodeInfo(hostname, version) {
      nodeInfo.reset()
      nodeInfo.set([hostname, version], 1)
    },
    snapshot: () => ({
      families: [status, latency, handshakes, certFailures, expiry, crlNextUpdate, reachable, modifyIndexes, lastEvent, rejected, nodeInfo].map((f) => f.snapshot()),
    }),
  }
}

/**
 * The expiry gauge, kept as the certificate records themselves (the expiry tracker's view of
 * them: a change replaces the view in O(1)) and turned into series on the first snapshot after
 * a change: with 100k ssl objects a Gauge's label tree costs ~60 MiB a
 * worker, the records a fraction of it. Same series as a Gauge set record by record: non-finite
 * values left out, a repeated label set keeps its first place and its last value, series past
 * `maxSeries` share one overflow series.
 */
function expiryGauge(o: FamilyOptions & { readonly crl?: boolean }): { replace(records: Iterable<CertRecord>): void; snapshot(): FamilySnapshot } {
  let records: Iterable<CertRecord> = []
  let built: FamilySnapshot | undefined
  const build = (): FamilySnapshot => {
    const series: ValueSeries[] = []
    const at = new Map<string, number>()
    let overflow: number | undefined
    for (const r of records) {
      // the CRL gauge takes the `crl` records, the certificate gauge every other
      if ((r.kind === 'crl') !== (o.crl === true)) continue
      const value = r.notAfter.getTime() / 1000
      if (!Number.isFinite(value)) continue
      const labels = o.crl ? [r.id, r.subject] : expiryLabels(r.kind, r.id, r.names, r.subject)
      const key = labels.join('\u0000')
      let i = at.get(key)
      if (i === undefined && series.length >= (o.maxSeries ?? 10_000)) {
        i = overflow ??= series.push({ labels: labels.map(() => OVERFLOW_LABEL), value }) - 1
      } else if (i === undefined) {
        at.set(key, series.length)
        series.push({ labels, value })
        continue
      }
      series[i] = { labels: series[i]?.labels ?? labels, value }
    }
    const head = o.optional === undefined ? { name: o.name, help: o.help, labelNames: o.labelNames } : { name: o.name, help: o.help, labelNames: o.labelNames, optional: o.optional }
    return { ...head, type: 'gauge', merge: 'max', series }
  }
  return {
    replace(next) {
      records = next
      built = undefined
    },
    snapshot: () => (built ??= build()),
  }
}

function expiryLabels(kind: CertKind, id: string, names: readonly string[], subject: string): string[] {
  const sni = names.join(',')
  return kind === 'consumer' ? [kind, '', id, sni, subject] : [kind, id, '', sni, subject]
}
