/**
 * One undici Pool per upstream node and connection options (DESIGN.md §1), shared by every
 * upstream naming it, kept alive between requests, closed when no generation names it.
 */
import { readFileSync } from 'node:fs'
import { connect as h2connect, type ClientHttp2Session } from 'node:http2'
import { Pool } from 'undici'
import type { LocalConfig } from '../config/local-schema.js'
import { GatewayError } from '../errors.js'
import type { PoolOptions } from './upstream-plan.js'

/** The worker's pools. */
export interface Pools {
  /** The pool for `key`, made on first use. */
  get(key: string, o: PoolOptions): Pool
  /**
   * The HTTP/2 session to a gRPC node (scheme grpc: h2c; grpcs: TLS with the upstream's `tls`
   * settings and client certificate), made on first use and again once it closes or gets GOAWAY.
   * A session not connected within the connect timeout is destroyed with UND_ERR_CONNECT_TIMEOUT.
   */
  h2(key: string, o: PoolOptions): ClientHttp2Session
  /** Closes (gracefully: in-flight requests finish) every pool whose key is not in `keep`. */
  retain(keep: ReadonlySet<string>): void
  /** Closes every pool. */
  close(): Promise<void>
  /** How many pools are open (tests and metrics). */
  size(): number
}

/**
 * The CA bundle upstreams with `tls.verify` are checked against: `apisix.ssl.ssl_trusted_certificate`
 * (as APISIX's proxy_ssl_trusted_certificate), undefined for the system roots. An unreadable file
 * or one without a certificate is a configuration error naming the key.
 */
export function upstreamCa(file: string, c: LocalConfig): Buffer | undefined {
  const path = c.apisix.ssl.ssl_trusted_certificate
  if (!path) return undefined
  let pem: Buffer
  try {
    pem = readFileSync(path)
  } catch (err) {
    throw new GatewayError('GW_CONF_INVALID', [file, 'apisix.ssl.ssl_trusted_certificate', `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`], { cause: err })
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new GatewayError('GW_CONF_INVALID', [file, 'apisix.ssl.ssl_trusted_certificate', `${path} holds no PEM certificate`])
  return pem
}

/**
 * Creates the pool set of one worker. `ca`: the CA bundle an upstream with `tls.verify` is
 * checked against (`apisix.ssl.ssl_trusted_certificate`); the system roots when undefined.
 */
export function createPools(o: { readonly ca?: Buffer } = {}): Pools {
  const ca = o.ca
  const pools = new Map<string, Pool>()
  const sessions = new Map<string, ClientHttp2Session>()
  const forget = (key: string, s: ClientHttp2Session): void => {
    if (sessions.get(key) === s) sessions.delete(key)
  }
  return {
    h2(key, po) {
      const open = sessions.get(key)
      if (open && !open.closed && !open.destroyed) return open
      const tls = po.origin.startsWith('https:')
      const s = h2connect(po.origin, {
        ...(tls
          ? {
              rejectUnauthorized: po.verify,
              ...(po.verify && ca !== undefined ? { ca } : {}),
              ...(po.clientCert && po.clientKey ? { cert: po.clientCert, key: po.clientKey } : {}),
            }
          : {}),
        settings: { enablePush: false },
      })
      // every call made while the session connects waits for 'connect' (core/proxy/grpc.ts reads
      // its body then): a burst of calls is not a listener leak, and Node's warning would be a
      // non-JSON line on the gateway's stderr
      s.setMaxListeners(0)
      const timer = setTimeout(() => s.destroy(Object.assign(new Error('connect timeout'), { code: 'UND_ERR_CONNECT_TIMEOUT' })), po.connectTimeoutMs)
      s.once('connect', () => clearTimeout(timer))
      s.on('error', () => forget(key, s))
      s.once('goaway', () => forget(key, s))
      s.once('close', () => {
        clearTimeout(timer)
        forget(key, s)
      })
      // idle sessions close as an idle pool connection would
      s.setTimeout(po.idleMs, () => s.close())
      sessions.set(key, s)
      return s
    },
    get(key, po) {
      let p = pools.get(key)
      if (!p) {
        p = new Pool(po.origin, {
          connections: po.connections,
          pipelining: 1,
          // upstreams speak HTTP/1.1 (CONTRACT.md): undici 8 offers h2 by ALPN unless told not to
          allowH2: false,
          keepAliveTimeout: po.idleMs,
          keepAliveMaxTimeout: Math.max(po.idleMs, 1000),
          maxRequestsPerClient: po.maxRequests,
          // per-request timeouts are set on each dispatch
          headersTimeout: 0,
          bodyTimeout: 0,
          connect: {
            timeout: po.connectTimeoutMs,
            rejectUnauthorized: po.verify,
            ...(po.verify && ca !== undefined ? { ca } : {}),
            ...(po.clientCert && po.clientKey ? { cert: po.clientCert, key: po.clientKey } : {}),
          },
        })
        pools.set(key, p)
      }
      return p
    },
    retain(keep) {
      for (const [key, s] of sessions) {
        if (keep.has(key)) continue
        sessions.delete(key)
        s.close()
      }
      for (const [key, p] of pools) {
        if (keep.has(key)) continue
        pools.delete(key)
        void p.close().catch(() => undefined)
      }
    },
    async close() {
      const all = [...pools.values()]
      pools.clear()
      for (const s of sessions.values()) s.close()
      sessions.clear()
      await Promise.all(all.map((p) => p.close().catch(() => undefined)))
    },
    size: () => pools.size,
  }
}
