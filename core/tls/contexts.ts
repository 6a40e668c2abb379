import { createHash, hkdfSync, X509Certificate } from 'node:crypto'
import { createServer, Server, type DetailedPeerCertificate, type TlsOptions } from 'node:tls'
import type { Entry } from '../config/snapshot.js'
import type { Ssl } from '../resources/ssl.js'
import { decryptKey } from '../resources/key-crypto.js'
import type { SniEntry } from './sni-index.js'
import type { ClientRules } from './facts.js'
import { ticketKeyName, type TicketSecrets } from './ticket-secrets.js'
import { protocolOptions, type TlsDefaults } from './settings.js'

export { protocolOptions } from './settings.js'
import { enableStapling, type Stapling } from './stapling.js'
import { chainLink, compileCrlSet, crlsOf, type ChainLink, type CrlSet } from '../x509/crl.js'
import { blockDer, pemBlocksOf } from '../x509/pem.js'

/** An ssl object as the data plane holds it (schema defaults filled, id from the key). */
export type SslValue = Readonly<Ssl> & { readonly id: string }

/**
 * One ssl object's TLS policy: what the TLS front needs to serve its SNIs. Cheap to create; its
 * `tls.Server` (never listening: the front hands it sockets) is built on the first call to
 * `server()`, or at once when the object changed through the watch (DESIGN.md §2.5).
 */
export interface TlsPolicy extends SniEntry {
  readonly modRevision: string
  /** the object's `client` block compiled; undefined: no CertificateRequest */
  readonly client: ClientRules | undefined
  /**
   * The policy's server, built once; an Error when the object cannot be served (bad key). Given
   * the key name of the ticket a client offers, a ticket made with the previous secret gets a
   * server holding that secret's keys, so it resumes until the next rotation.
   */
  server(ticketKeyName?: string): Server | Error
  /** true once server() has been built (or failed) */
  built(): boolean
  /**
   * Makes every ticket this worker issued for the object so far unusable (its ticket keys move
   * to a new round): each such client makes a full handshake next time. Called when the peer
   * cache drops the entry a session's verdict depends on (core/tls/peer-cache.ts).
   */
  dropTickets(): void
}

/** What building policies needs from the worker. */
export interface PolicyDeps {
  /** apisix.data_encryption.keyring: stored keys are encrypted with it */
  readonly keyring: readonly string[]
  /** the primary's secrets (APISIX_TICKET_SECRET, rotated over IPC): ticket keys derive from them, so workers agree */
  tickets(): TicketSecrets
  /** called once when an object's server cannot be built */
  onBuildError(id: string, reason: string): void
  /** hears why an OCSP fetch for stapling failed (the handshakes go on without a staple) */
  onStaplingError?(id: string, reason: string): void
  /** apisix.enable_http2: the policies offer h2 by ALPN (default false: no ALPN at all) */
  readonly http2?: boolean | undefined
  /** apisix.ssl.ssl_protocols and ssl_ciphers (default: APISIX's) */
  readonly tls?: TlsDefaults | undefined
}

/**
 * ALPN with HTTP/2 on (DESIGN.md §2.7 and §4): h2 when offered, else http/1.1, else the client's
 * own first protocol. Never undefined: Node answers that (and a list with no overlap, with
 * ALPNProtocols) with a fatal no_application_protocol alert (measured on Node 24), and a client
 * is never refused for its ALPN list.
 */
export function chooseAlpn(o: { readonly protocols: readonly string[] }): string {
  const p = o.protocols
  return p.includes('h2') ? 'h2' : p.includes('http/1.1') ? 'http/1.1' : p[0]!
}

/** Policies cached by their frozen snapshot entry: an unchanged object keeps its built server. */
export interface PolicyCache {
  /** The policy of an ssl entry; `eager` builds its server now (a change seen through the watch). */
  policyFor(entry: Entry<SslValue>, eager: boolean): TlsPolicy
}

/**
 * Ticket keys (48 bytes) and session id context of one version of one object: every worker
 * derives the same ones, and a replaced object (new modRevision) resumes nothing made before.
 * The context does not depend on the secret: a server whose keys were rotated in place and one
 * built after the rotation must accept each other's sessions.
 */
export function sessionSecrets(secret: Buffer, id: string, modRevision: string, scope = ''): { ticketKeys: Buffer; sessionIdContext: string } {
  const info = `${id}\u0000${modRevision}`
  const ticketKeys = Buffer.from(hkdfSync('sha256', secret, 'apisix-tls-ticket-keys', scope ? `${info}\u0000${scope}` : info, 48))
  const sessionIdContext = createHash('sha256').update(`apisix-tls-session-id-context\u0000${info}`).digest().subarray(0, 16).toString('hex')
  return { ticketKeys, sessionIdContext }
}

/**
 * The ticket-key scope of an object: this worker alone for an object with `client`, every worker
 * for the others. A resumed session carries the leaf but not the intermediates the client sent,
 * so its client.depth and CRL verdicts come from the full handshake that made it, which only the
 * worker that ran it remembers (core/tls/peer-cache.ts). With tickets every worker could open, a
 * chain past the depth resumed on another worker as SUCCESS (its count there is only a lower
 * bound). Such a ticket now fails to decrypt elsewhere and the client makes a full handshake.
 * `round` counts the object's dropTickets() on this worker: when the peer cache drops an entry
 * its sessions depend on, the keys move on and those tickets no longer decrypt here either.
 */
export const ticketScope = (ssl: Pick<Ssl, 'client'>, round = 0): string => (ssl.client ? `worker\u0000${process.pid}\u0000${round}` : '')

/** Compiles an object's `client` block; undefined when it has none. */
export function compileClientRules(ssl: Pick<Ssl, 'client'>): ClientRules | undefined {
  if (!ssl.client) return undefined
  const skip: RegExp[] = []
  for (const p of ssl.client.skip_mtls_uri_regex ?? []) {
    try {
      skip.push(new RegExp(p))
    } catch {
      // the decoder refused such objects already; an uncompilable pattern skips nothing
    }
  }
  let crls: CrlSet | undefined
  if (ssl.client.crl !== undefined) {
    // the decoder checked the CRLs (parse, signature by a CA of client.ca) before this object got here
    crls = compileCrlSet(crlsOf(ssl.client, ssl.client.crl))
  }
  // with CRLs, a handshake asks which intermediates the client sent (sentIntermediates)
  const caPrints = crls ? caFingerprints(ssl.client.ca) : undefined
  return Object.freeze({ ca: ssl.client.ca, depth: ssl.client.depth ?? 1, skip: Object.freeze(skip), crls, crl: ssl.client.crl, caPrints })
}

/** Node's options for an object's policy server; throws when a key cannot be decrypted. */
export function serverOptions(ssl: SslValue, modRevision: string, deps: Pick<PolicyDeps, 'keyring' | 'http2' | 'tls'> & { readonly ticketSecret: Buffer }, round = 0): TlsOptions {
  const keys = [ssl.key, ...(ssl.keys ?? [])].map((k, i) => {
    const plain = decryptKey(k, deps.keyring)
    if (!plain.ok) throw new Error(`${i === 0 ? 'key' : `keys[${i - 1}]`}: ${plain.error}`)
    return plain.value
  })
  const { ticketKeys, sessionIdContext } = sessionSecrets(deps.ticketSecret, ssl.id, modRevision, ticketScope(ssl, round))
  const opts: TlsOptions = {
    cert: [ssl.cert, ...(ssl.certs ?? [])],
    key: keys,
    ticketKeys,
    sessionIdContext,
    sessionTimeout: 600,
    handshakeTimeout: 10_000,
    ...protocolOptions(ssl.ssl_protocols, deps.tls),
  }
  if (deps.http2) (opts as TlsOptions & { ALPNCallback: typeof chooseAlpn }).ALPNCallback = chooseAlpn
  if (ssl.client) {
    opts.ca = ssl.client.ca
    opts.requestCert = true
    opts.rejectUnauthorized = !(ssl.client.skip_mtls_uri_regex?.length)
  } else {
    opts.requestCert = false
    opts.rejectUnauthorized = false
  }
  return opts
}

/** The SNI patterns of an object: `snis`, or `[sni]`. */
const snisOf = (ssl: SslValue): readonly string[] => ssl.snis ?? (ssl.sni === undefined ? [] : [ssl.sni])

/**
 * One object's policy. A class, not a closure per policy: a worker holds one per ssl object
 * (100k of them), and a shared prototype plus private fields cost about a quarter of an object
 * literal with two closures and their context. Frozen: only the private state (the built
 * servers) changes.
 */
class Policy implements TlsPolicy {
  readonly id: string
  readonly snis: readonly string[]
  readonly updateTime: number
  readonly modRevision: string
  readonly client: ClientRules | undefined
  readonly #ssl: SslValue
  readonly #deps: PolicyDeps
  #built: Server | Error | undefined
  #epoch = 0
  // dropTickets() rounds: part of the ticket keys' scope (objects with client only)
  #round = 0
  #stapling: Stapling | undefined
  // the server for tickets made with the previous secret, built when such a ticket arrives
  #older: { epoch: number; name: string; server: Server | undefined } | undefined

  constructor(entry: Entry<SslValue>, deps: PolicyDeps) {
    const ssl = entry.value
    this.id = ssl.id
    this.snis = snisOf(ssl)
    this.updateTime = ssl.update_time ?? 0
    this.modRevision = entry.modRevision
    this.client = compileClientRules(ssl)
    this.#ssl = ssl
    this.#deps = deps
    Object.freeze(this)
  }

  server(ticket?: string): Server | Error {
    const deps = this.#deps
    const ssl = this.#ssl
    const secrets = deps.tickets()
    if (!this.#built) {
      this.#epoch = secrets.epoch
      try {
        const server = createServer(serverOptions(ssl, this.modRevision, { keyring: deps.keyring, http2: deps.http2, tls: deps.tls, ticketSecret: secrets.current }, this.#round))
        const ocsp = ssl.ocsp_stapling
        if (ocsp?.enabled) this.#stapling = enableStapling(server, ocsp, [ssl.cert, ...(ssl.certs ?? [])], (why) => deps.onStaplingError?.(ssl.id, why))
        this.#built = server
      } catch (err) {
        this.#built = err instanceof Error ? err : new Error(String(err))
        deps.onBuildError(ssl.id, this.#built.message)
      }
    }
    const built = this.#built
    if (built instanceof Error) return built
    // a fetch due (a response ran out, a retry): started off this connection's path
    this.#stapling?.poke()
    if (this.#epoch !== secrets.epoch) {
      // rotated: new tickets are made with the new secret
      built.setTicketKeys(sessionSecrets(secrets.current, ssl.id, this.modRevision, ticketScope(ssl, this.#round)).ticketKeys)
      this.#epoch = secrets.epoch
    }
    if (ticket === undefined || !secrets.previous) return built
    let older = this.#older
    if (older?.epoch !== secrets.epoch) {
      const keys = sessionSecrets(secrets.previous, ssl.id, this.modRevision, ticketScope(ssl, this.#round)).ticketKeys
      older = this.#older = { epoch: secrets.epoch, name: ticketKeyName(keys), server: undefined }
    }
    if (ticket !== older.name) return built
    older.server ??= createServer(serverOptions(ssl, this.modRevision, { keyring: deps.keyring, http2: deps.http2, tls: deps.tls, ticketSecret: secrets.previous }, this.#round))
    return older.server
  }

  dropTickets(): void {
    if (!this.#ssl.client) return
    this.#round++
    const built = this.#built
    if (built instanceof Server) built.setTicketKeys(sessionSecrets(this.#deps.tickets().current, this.id, this.modRevision, ticketScope(this.#ssl, this.#round)).ticketKeys)
    // the previous secret's keys move too: its server is made again when a new-round ticket asks
    this.#older = undefined
  }

  built(): boolean {
    return this.#built !== undefined
  }
}

/** Creates the policy cache of one worker (a WeakMap keyed by the frozen entry). */
export function createPolicyCache(deps: PolicyDeps): PolicyCache {
  const cache = new WeakMap<object, TlsPolicy>()
  return {
    policyFor(entry, eager) {
      let p = cache.get(entry)
      if (!p) {
        p = new Policy(entry, deps)
        cache.set(entry, p)
        if (eager) p.server()
      }
      return p
    },
  }
}

/**
 * Intermediates between a verified client leaf and its trust anchor, from Node's completed chain
 * (`getPeerCertificate(true)`): OpenSSL's depth counts them (depth N allows N, spec §6.3).
 */
export function intermediatesIn(leaf: DetailedPeerCertificate): number {
  return walkChain(leaf).intermediates
}

/** Intermediates in Node's chain below its last certificate, and whether that one is a self-issued anchor. */
function walkChain(leaf: DetailedPeerCertificate): { intermediates: number; anchored: boolean } {
  let n = 1
  let cur = leaf
  const seen = new Set<DetailedPeerCertificate>([leaf])
  while (cur.issuerCertificate && !seen.has(cur.issuerCertificate) && cur.issuerCertificate.fingerprint256 !== cur.fingerprint256) {
    cur = cur.issuerCertificate
    seen.add(cur)
    n++
  }
  // the last certificate is the anchor when it issued itself; otherwise the anchor is missing from the chain
  const anchored = cur.issuerCertificate === cur || cur.issuerCertificate?.fingerprint256 === cur.fingerprint256
  return { intermediates: Math.max(0, anchored ? n - 2 : n - 1), anchored }
}

/**
 * Intermediates of a resumed session's chain, as far as they can be known: the session keeps the
 * leaf but not the intermediates the client sent (OpenSSL's SSL_SESSION encoding has no peer
 * chain), so Node's chain is the leaf plus what the CA store adds. Exact when the store reaches a
 * self-issued anchor from the leaf; otherwise at least one intermediate was there (a lower bound:
 * depth 0 is judged exactly, a deeper chain needs the full handshake's count, core/tls/peer-cache.ts).
 */
export function resumedIntermediates(leaf: DetailedPeerCertificate): number {
  const w = walkChain(leaf)
  return w.anchored ? w.intermediates : Math.max(1, w.intermediates)
}

/**
 * The certificates of a verified chain as the revocation check reads them (leaf first, without
 * the trust anchor), from Node's completed chain (`getPeerCertificate(true)`).
 */
export function chainLinksOf(leaf: DetailedPeerCertificate): ChainLink[] {
  const out: ChainLink[] = []
  const seen = new Set<DetailedPeerCertificate>()
  for (let cur: DetailedPeerCertificate | undefined = leaf; cur && !seen.has(cur); cur = cur.issuerCertificate) {
    seen.add(cur)
    const anchor = cur.issuerCertificate === cur || cur.issuerCertificate?.fingerprint256 === cur.fingerprint256
    if (anchor && cur !== leaf) break
    const link = cur.raw ? chainLink(cur.raw) : undefined
    if (link) out.push(link)
    if (anchor) break
  }
  return out
}

/** Node's `fingerprint256` of each certificate of a `client.ca` PEM. */
function caFingerprints(ca: string): ReadonlySet<string> {
  const set = new Set<string>()
  for (const b of pemBlocksOf(ca, 'CERTIFICATE')) {
    const der = blockDer(b)
    if (!Buffer.isBuffer(der)) continue
    try {
      set.add(new X509Certificate(der).fingerprint256)
    } catch {
      // the decoder checked client.ca; a block that does not parse adds nothing
    }
  }
  return set
}

const NO_PRINTS: ReadonlySet<string> = new Set()

/**
 * Whether a verified chain (`getPeerCertificate(true)` of a full handshake) holds an intermediate
 * that is not one of the object's `client.ca` certificates: one only the client sent, which a
 * resumed session will not have (its chain is the leaf plus what the CA store adds). Asked of
 * objects with CRLs, whose compiled rules carry the CA fingerprints (compileClientRules).
 */
export function sentIntermediates(leaf: DetailedPeerCertificate, rules: ClientRules): boolean {
  const prints = rules.caPrints ?? NO_PRINTS
  const seen = new Set<DetailedPeerCertificate>([leaf])
  for (let cur = leaf.issuerCertificate; cur && !seen.has(cur); cur = cur.issuerCertificate) {
    seen.add(cur)
    const anchor = cur.issuerCertificate === cur || cur.issuerCertificate?.fingerprint256 === cur.fingerprint256
    if (anchor) break
    if (!prints.has(cur.fingerprint256)) return true
  }
  return false
}
