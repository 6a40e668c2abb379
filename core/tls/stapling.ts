/**
 * OCSP stapling for an ssl object's server certificates (CONTRACT.md `ocsp_stapling`). Node asks
 * through the policy server's 'OCSPRequest' event (from OpenSSL's certificate callback, on full
 * handshakes of clients that sent status_request); the answer comes from a cache only, never from
 * the network: a cached good response within `cache_ttl` and its nextUpdate is stapled, otherwise
 * the handshake goes on without one. Responses are checked (core/x509/ocsp.ts) unless
 * `skip_verify`. The cache belongs to the policy server: a new version of the object starts
 * afresh, and the first fetch starts when the server is built.
 *
 * The listener is attached only while a fresh response is cached. With it, Node pauses every
 * handshake of a status_request client in the certificate callback and makes the certificate and
 * issuer into Buffers for the event; with the responder down there is nothing to staple, so the
 * handshakes go as with stapling off (bench row 12). Node reads the listener count as a socket is
 * handed to the server, so a change applies to the next connections. Fetches are started by
 * `poke()`, which the policy calls on every connection (a clock read and a compare until
 * something is due): one at a time per certificate, a failed one retried after RETRY_MS, a
 * response refreshed once it runs out. No timer: an object nobody connects to fetches nothing.
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

/** What the policy keeps of its stapling: `poke()` on each connection. */
export interface Stapling {
  poke(): void
}

/**
 * Wires stapling on a policy server. `certPems` are the object's `cert` and `certs`, each with its
 * issuer after the leaf (the OCSP request names the issuer's key; without it nothing is fetched
 * and `onError` says so). `onError` hears why a fetch failed (logged by the caller).
 */
export function enableStapling(server: Server, conf: StaplingConf, certPems: readonly string[], onError: (why: string) => void, now: () => number = Date.now): Stapling {
  const entries: { leaf: Buffer; issuer: Buffer; url: string | undefined; e: Entry }[] = []
  for (const pem of certPems) {
    const [leaf, issuer] = pemBlocksOf(pem, 'CERTIFICATE').map(blockDer)
    if (!Buffer.isBuffer(leaf)) continue
    if (!Buffer.isBuffer(issuer)) {
      onError('the certificate is not followed by its issuer in the PEM: no OCSP request can name it')
      continue
    }
    let url: string | undefined
    try {
      url = ocspUrl(new X509Certificate(leaf))
    } catch {
      url = undefined
    }
    if (!url) onError('the certificate names no http OCSP responder (authorityInfoAccess)')
    entries.push({ leaf, issuer, url, e: { response: undefined, until: 0, fetching: false, retryAt: url ? 0 : Infinity } })
  }
  // when poke() has something to do next (a response runs out, a retry is due); 0: look now
  let nextCheck = 0
  let attached = false
  const onRequest = (cert: Buffer, _issuer: Buffer | null, cb: (err: Error | null, resp?: Buffer) => void): void => {
    const t = now()
    const hit = entries.find((x) => x.leaf.equals(cert))
    // never waits for the network: a stale or missing response means no staple this time
    cb(null, hit && hit.e.response !== undefined && t < hit.e.until ? hit.e.response : undefined)
  }
  const fetchFor = (x: (typeof entries)[number]): void => {
    const e = x.e
    e.fetching = true
    let sent: Promise<Buffer>
    try {
      sent = postOcsp(x.url!, ocspRequest(x.leaf, x.issuer))
    } catch (err) {
      // poke() runs on the connection path: nothing it starts may throw there
      sent = Promise.reject(err instanceof Error ? err : new Error(String(err)))
    }
    sent.then(
      (body) => {
        e.fetching = false
        const t = now()
        const r = checkOcspResponse(body, x.leaf, x.issuer, t, conf.skip_verify)
        if (!r.ok) {
          e.retryAt = t + RETRY_MS
          onError(r.error)
        } else {
          e.response = body
          e.until = Math.min(t + conf.cache_ttl * 1000, r.nextUpdate ?? Infinity)
          e.retryAt = 0
        }
        nextCheck = 0
        poke()
      },
      (err: Error) => {
        e.fetching = false
        e.retryAt = now() + RETRY_MS
        onError(err.message)
        nextCheck = 0
      },
    )
  }
  const poke = (): void => {
    const t = now()
    if (t < nextCheck) return
    let next = Infinity
    let fresh = false
    for (const x of entries) {
      const e = x.e
      if (e.response !== undefined && t < e.until) {
        fresh = true
        next = Math.min(next, e.until)
      } else if (e.fetching) {
        // its end sets nextCheck back to 0
      } else if (t >= e.retryAt) {
        fetchFor(x)
      } else {
        next = Math.min(next, e.retryAt)
      }
    }
    if (fresh !== attached) {
      if (fresh) server.on('OCSPRequest', onRequest)
      else server.off('OCSPRequest', onRequest)
      attached = fresh
    }
    nextCheck = next
  }
  // the first fetch at once
  poke()
  return { poke }
}
