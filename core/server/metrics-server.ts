/**
 * The primary's Prometheus listener (`plugin_attr.prometheus`): a scrape asks every worker for
 * its snapshot over cluster IPC, merges them (counters and histograms summed, gauges by their
 * family's rule) and renders text format 0.0.4. Workers keep no per-worker label, so a scrape
 * reports the gateway as one.
 */
import { createServer, type Server } from 'node:http'
import type { LocalConfig } from '../config/local-schema.js'
import type { Logger } from '../log.js'
import type { MetricsSnapshot } from '../metrics/registry.js'
import { mergeSnapshots, PROMETHEUS_CONTENT_TYPE, renderPrometheus } from '../metrics/exposition.js'
import { listen } from './listeners.js'
import type { Workers } from './workers.js'

/** The running metrics listener. */
export interface MetricsServer {
  /** ip:port it listens on. */
  readonly address: string
  close(): Promise<void>
}

/**
 * Where a scrape's numbers come from: the workers (set once they are forked; a scrape before
 * that has no worker series) and, optionally, families the primary itself keeps.
 */
export interface MetricsSources {
  workers?: Pick<Workers, 'ask' | 'count'>
  readonly primary?: () => MetricsSnapshot
}

const isSnapshot = (v: unknown): v is MetricsSnapshot =>
  typeof v === 'object' && v !== null && Array.isArray((v as { families?: unknown }).families)

/**
 * Starts the listener on export_addr; undefined when `enable_export_server` is false.
 * A port in use rejects with GW_PORT_IN_USE naming `plugin_attr.prometheus.export_addr`.
 * GET (or HEAD) on export_uri answers the scrape (503 while no worker answers); other paths
 * 404, other methods 405.
 */
export async function startMetricsServer(config: LocalConfig, sources: MetricsSources, log: Logger): Promise<MetricsServer | undefined> {
  const p = config.plugin_attr.prometheus
  if (!p.enable_export_server) return undefined
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0]
    if (path !== p.export_uri) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error_msg":"404 Route Not Found"}\n')
      return
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'content-type': 'application/json', allow: 'GET, HEAD' }).end('{"error_msg":"method not allowed"}\n')
      return
    }
    void scrape(sources, log).then(
      (body) => {
        if (body === undefined) {
          // before the workers are up, or none answered: a failed scrape (up 0), not an empty one
          res.writeHead(503, { 'content-type': 'application/json' }).end('{"error_msg":"no data-plane worker answered"}\n')
          return
        }
        res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE, 'content-length': Buffer.byteLength(body) })
        res.end(req.method === 'HEAD' ? undefined : body)
      },
      (err: unknown) => {
        log.error({ err }, 'metrics scrape failed')
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' })
        res.end('{"error_msg":"metrics scrape failed"}\n')
      },
    )
  })
  server.keepAliveTimeout = 60_000
  const { ip, port } = p.export_addr
  await listen(server, 'plugin_attr.prometheus.export_addr', ip, port)
  return {
    address: `${ip}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

/** The workers' metrics merged (and the primary's); undefined when no worker answered (none forked yet, or all too slow). */
export async function collectMetrics(sources: MetricsSources, log: Pick<Logger, 'warn'>): Promise<MetricsSnapshot | undefined> {
  const w = sources.workers
  const replies = w === undefined ? [] : (await w.ask('metrics')).filter(isSnapshot)
  if (replies.length === 0) return undefined
  if (w !== undefined && replies.length < w.count) log.warn({ answered: replies.length, expected: w.count }, 'metrics scrape: some workers did not answer in time')
  const all = sources.primary === undefined ? replies : [...replies, sources.primary()]
  return mergeSnapshots(all)
}

/** The rendered scrape; undefined when no worker answered. */
async function scrape(sources: MetricsSources, log: Logger): Promise<string | undefined> {
  const merged = await collectMetrics(sources, log)
  return merged === undefined ? undefined : renderPrometheus(merged)
}
