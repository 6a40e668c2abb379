/**
 * OCSP stapling for an ssl object's server certificates (CONTRACT.md `ocsp_stapling`). Node asks
 * through the policy server's 'OCSPRequest' event (from OpenSSL's certificate callback, on full
 * handshakes of clients that sent status_request); the answer comes from a cache only, never from
 * the network: a cached good response within `cache_ttl` and its nextUpdate is stapled, otherwise
 * the handshake goes on without one and a fetch starts in the background (one at a time per
 * certificate, a failed one retried after RETRY_MS). Responses are checked (core/x509/ocsp.ts)
 * unless `skip_verify`. The cache belongs to the policy server: a new version of the object starts
 * afresh, and the first fetch starts when the server is built.
 */
import { request } from 'node:http'
import type { Server } from 'node:tls'
import { X509Certificate } from 'node:crypto'
import { checkOcspResponse, ocspRequest, ocspUrl } from '../x509/ocsp.js'
import { blockDer, pemBlocksOf } from '../x509/pem.js'

/** How long a fetch may take, and how long after a failed one the next may start. */
export const FETCH_TIMEOUT_MS = 5_000
export const RETRY_MS = 30_000
const MAX_RESPONSE = 64 * 1024

export interface StaplingConf {
  readonly skip_verify: boolean
  readonly cache_ttl: number
}

interface Entry {
  response: Buffer | undefined
  until: number
  fetching: boolean
  retryAt: number
}

/** POSTs an OCSP request; resolves with the body of a 200 answer, rejects otherwise. */
export function postOcsp(url: string, body: Buffer, timeoutMs = FETCH_TIMEOUT_MS): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'content-type': 'application/ocsp-request', 'content-length': body.length }, timeout: timeoutMs }, (res) => {
      const parts: Buffer[] = []
      let size = 0
      res.on('data', (d: Buffer) => {
        size += d.length
        if (size > MAX_RESPONSE) req.destroy(new Error('OCSP response too large'))
        else parts.push(d)
      })
      res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(parts)) : reject(new Error(`OCSP responder answered ${res.statusCode}`))))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error('OCSP responder timed out')))
    req.on('error', reject)
    req.end(body)
  })
}

/**
 * Wires stapling on a policy server. `certPems` are the object's `cert` and `certs` (each may
 * carry its issuer after the leaf: that issuer is used until Node names one). `onError` hears why
 * a fetch failed (logged by the caller).
 */
export function enableStapling(server: Server, conf: StaplingConf, certPems: readonly string[], onError: (why: string) => void, now: () => number = Date.now): void {
  const cache = new Map<string, Entry>()
  const fetchFor = (leaf: Buffer, issuer: Buffer, e: Entry): void => {
    if (e.fetching || now() < e.retryAt) return
    let url: string | undefined
    try {
      url = ocspUrl(new X509Certificate(leaf))
    } catch {
      url = undefined
    }
    if (!url) {
      e.retryAt = Infinity
      onError('the certificate names no http OCSP responder (authorityInfoAccess)')
      return
    }
    e.fetching = true
    postOcsp(url, ocspRequest(leaf, issuer)).then(
      (body) => {
        e.fetching = false
        const t = now()
        const r = checkOcspResponse(body, leaf, issuer, t, conf.skip_verify)
        if (!r.ok) {
          e.retryAt = t + RETRY_MS
          onError(r.error)
          return
        }
        e.response = body
        e.until = Math.min(t + conf.cache_ttl * 1000, r.nextUpdate ?? Infinity)
        e.retryAt = 0
      },
      (err: Error) => {
        e.fetching = false
        e.retryAt = now() + RETRY_MS
        onError(err.message)
      },
    )
  }
  const entryOf = (leaf: Buffer): Entry => {
    const key = leaf.toString('latin1')
    let e = cache.get(key)
    if (!e) cache.set(key, (e = { response: undefined, until: 0, fetching: false, retryAt: 0 }))
    return e
  }
  server.on('OCSPRequest', (cert: Buffer, issuer: Buffer | null, cb: (err: Error | null, resp?: Buffer) => void) => {
    const e = entryOf(cert)
    const t = now()
    const fresh = e.response !== undefined && t < e.until
    // never waits for the network: a stale or missing response means no staple this time
    cb(null, fresh ? e.response : undefined)
    if (!fresh && issuer) fetchFor(cert, issuer, e)
  })
  // the first fetch at once, with the issuer the PEM carries after each leaf
  for (const pem of certPems) {
    const [leaf, issuer] = pemBlocksOf(pem, 'CERTIFICATE').map(blockDer)
    if (Buffer.isBuffer(leaf) && Buffer.isBuffer(issuer)) fetchFor(leaf, issuer, entryOf(leaf))
  }
}
