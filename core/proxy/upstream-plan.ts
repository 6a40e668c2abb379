/**
 * An upstream object compiled for the proxy, once per upstream value (spec §2.2, §9): nodes in
 * array form with ports filled, a picker, timeouts in ms, the pool options of each node.
 */
import { createHash } from 'node:crypto'
import type { Upstream } from '../resources/upstream.js'
import { splitHostPort } from '../resources/upstream.js'
import { buildPicker, type Picker } from './pick-node.js'

/** One upstream node, normalised. */
export interface PlanNode {
  /** as configured (a name or an IP; IPv6 in brackets) */
  readonly host: string
  readonly port: number
  readonly weight: number
  readonly priority: number
  /** the pool key: origin plus the connection options that make pools differ */
  readonly poolKey: string
  /** `http://host:port` or `https://host:port` */
  readonly origin: string
  /** `host:port`, as logs and metrics name the node */
  readonly name: string
}

/** Connect/read timeouts in milliseconds (send has no undici equivalent: see forward.ts). */
export interface Timeouts {
  readonly connectMs: number
  readonly sendMs: number
  readonly readMs: number
}

/** Options every pool of this upstream is built with. */
export interface PoolOptions {
  readonly origin: string
  readonly connectTimeoutMs: number
  readonly verify: boolean
  readonly clientCert: string | undefined
  readonly clientKey: string | undefined
  readonly connections: number
  readonly idleMs: number
  readonly maxRequests: number
}

/** A compiled upstream. */
export interface UpstreamPlan {
  readonly nodes: readonly PlanNode[]
  readonly picker: Picker<PlanNode>
  readonly scheme: 'http' | 'https'
  /** scheme grpc (h2c) or grpcs (h2 over TLS): requests go to the node over HTTP/2 (core/proxy/grpc.ts) */
  readonly grpc: boolean
  readonly passHost: 'pass' | 'node' | 'rewrite'
  readonly upstreamHost: string | undefined
  readonly type: string
  readonly hashOn: string
  readonly key: string | undefined
  /** extra tries after the first (APISIX default: nodes − 1) */
  readonly retries: number
  /** 0: no deadline */
  readonly retryTimeoutMs: number
  readonly timeouts: Timeouts
  /** the options of a node's pool, by poolKey */
  readonly poolOptions: ReadonlyMap<string, PoolOptions>
  /** in-flight requests per node (least_conn) */
  readonly active: Map<PlanNode, number>
  /** why this upstream cannot serve (503), e.g. a scheme this gateway does not proxy */
  readonly unusable: string | undefined
}

/** nginx's proxy defaults: 60 s each. */
export const DEFAULT_TIMEOUTS: Timeouts = Object.freeze({ connectMs: 60_000, sendMs: 60_000, readMs: 60_000 })

/** A route or upstream `timeout` (seconds) → milliseconds. */
export const timeoutsOf = (t: { connect: number; send: number; read: number } | undefined): Timeouts | undefined =>
  t ? { connectMs: t.connect * 1000, sendMs: t.send * 1000, readMs: t.read * 1000 } : undefined

function nodesOf(u: Upstream, defaultPort: number): { host: string; port: number; weight: number; priority: number }[] {
  const nodes = u.nodes
  if (nodes === undefined) return []
  if (Array.isArray(nodes)) return nodes.map((n) => ({ host: n.host, port: n.port ?? defaultPort, weight: n.weight, priority: n.priority ?? 0 }))
  const out: { host: string; port: number; weight: number; priority: number }[] = []
  for (const [hp, weight] of Object.entries(nodes)) {
    const p = splitHostPort(hp)
    if (p) out.push({ host: p.host, port: p.port ?? defaultPort, weight, priority: 0 })
  }
  return out
}

/** The client certificate and plain key an upstream's TLS connections present (resolved by core/generation/http-plan.ts). */
export interface ClientPair {
  readonly cert: string
  readonly key: string
}

/**
 * Compiles an upstream (pure; pickers keep their own position between picks). `client` is the
 * certificate pair its TLS connections present (`tls.client_cert`/`client_key` with the key
 * decrypted, or the ssl object `tls.client_cert_id` names); `unusable` makes every request 503.
 */
export function compileUpstream(u: Upstream, client?: ClientPair, unusableWhy?: string): UpstreamPlan {
  const scheme = u.scheme === 'https' || u.scheme === 'grpcs' ? 'https' : 'http'
  const grpc = u.scheme === 'grpc' || u.scheme === 'grpcs'
  const unusable = u.scheme === 'http' || u.scheme === 'https' || grpc ? unusableWhy : `upstream scheme ${u.scheme} is not supported by this gateway`
  const timeouts = timeoutsOf(u.timeout) ?? DEFAULT_TIMEOUTS
  const kp = u.keepalive_pool
  const poolOptions = new Map<string, PoolOptions>()
  const nodes = nodesOf(u, scheme === 'https' ? 443 : 80).map((n): PlanNode => {
    const host = n.host.includes(':') && !n.host.startsWith('[') ? `[${n.host}]` : n.host
    const origin = `${scheme}://${host}:${n.port}`
    const o: PoolOptions = {
      origin,
      connectTimeoutMs: timeouts.connectMs,
      verify: u.tls?.verify ?? false,
      // a client certificate is presented on TLS connections only (APISIX: scheme https)
      clientCert: scheme === 'https' ? client?.cert : undefined,
      clientKey: scheme === 'https' ? client?.key : undefined,
      connections: kp?.size ?? 320,
      idleMs: (kp?.idle_timeout ?? 60) * 1000,
      maxRequests: kp?.requests ?? 1000,
    }
    // HTTP/2 sessions and HTTP/1.1 pools never share a key
    const poolKey = grpc ? `h2|${poolKeyOf(o)}` : poolKeyOf(o)
    poolOptions.set(poolKey, o)
    return { host, port: n.port, weight: n.weight, priority: n.priority, poolKey, origin, name: `${host}:${n.port}` }
  })
  return {
    nodes,
    picker: buildPicker(u.type, nodes),
    scheme,
    grpc,
    passHost: u.pass_host,
    upstreamHost: u.upstream_host,
    type: u.type,
    hashOn: u.hash_on,
    key: u.key,
    retries: u.retries ?? Math.max(0, nodes.length - 1),
    retryTimeoutMs: (u.retry_timeout ?? 0) * 1000,
    timeouts,
    poolOptions,
    active: new Map(),
    unusable,
  }
}

/** The identity of a pool: two upstreams naming the same node with the same options share it. */
export function poolKeyOf(o: PoolOptions): string {
  const cert = o.clientCert ? `|c${createHash('sha1').update(o.clientCert).digest('hex')}` : ''
  return `${o.origin}|t${o.connectTimeoutMs}|v${o.verify ? 1 : 0}|n${o.connections}|i${o.idleMs}|r${o.maxRequests}${cert}`
}

/** The chash key of a request: hash_on/key read through the request's variables, else $remote_addr (APISIX). */
export function hashKeyOf(p: UpstreamPlan, varOf: (name: string) => string | undefined): string | undefined {
  if (p.type !== 'chash') return undefined
  let v: string | undefined
  switch (p.hashOn) {
    case 'header':
      v = varOf(`http_${(p.key ?? '').toLowerCase().replace(/-/g, '_')}`)
      break
    case 'cookie':
      v = varOf(`cookie_${p.key ?? ''}`)
      break
    case 'consumer':
      v = varOf('consumer_name')
      break
    case 'vars_combinations':
      v = (p.key ?? '').replace(/\$(\w+)/g, (_, n: string) => varOf(n) ?? '')
      break
    default:
      v = varOf(p.key ?? 'remote_addr')
  }
  return v === undefined || v === '' ? varOf('remote_addr') : v
}
