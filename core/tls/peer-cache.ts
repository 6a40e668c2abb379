/**
 * What a client certificate's DER gave under one ssl object's client policy, so a client that
 * reconnects with the same certificate costs a lookup: Node's `getPeerCertificate(true)`, the
 * only way to the verified chain, takes about 210 µs (it converts every certificate of the chain
 * and looks the anchor up in the store), and our DER reading another 27 µs, against about 2 ms
 * of CPU for a whole RSA-2048 handshake with a client certificate (measured on Node 20.20).
 *
 * Kept per policy object (a PUT that changes the object builds a new policy, so nothing carries
 * over to another CA or depth), at most MAX_PER_POLICY entries, the oldest going first. The
 * chain's intermediates are kept only when they were within the policy's depth: a certificate
 * refused for its chain is looked at afresh every time. Whether the certificate verifies (dates,
 * signature, CA) is still OpenSSL's verdict on each connection; only the chain's length, which
 * OpenSSL builds the same way for the same leaf and store (trusted issuers first), is reused.
 *
 * A resumed session has the leaf but not the intermediates the client sent, so the verdict of
 * its full handshake lives here. An entry that a session needs (`pinned`: the chain was past the
 * depth or revoked, or its client-sent intermediates carry CRL checks) must not leave silently:
 * a client holding an intermediate's key could mint MAX_PER_POLICY leaves to push it out, then
 * resume past the depth. When such an entry goes, `onPinnedEvicted` hears the policy, which drops
 * its tickets on this worker (TlsPolicy.dropTickets): every older session makes a full handshake.
 * Entries of chains that pass without their intermediates leave freely: their resumption's
 * lower bound gives the same verdict.
 */
import type { ClientCertFacts } from '../x509/cert.js'
import type { ChainLink } from '../x509/crl.js'

export const MAX_PER_POLICY = 256

export interface PeerEntry {
  /** the certificate's facts; undefined when its DER could not be read */
  readonly facts: ClientCertFacts | undefined
  /** intermediates of a chain that was within the depth; undefined until one was */
  intermediates: number | undefined
  /** the chain's certificates for the revocation check (leaf first, no anchor); read once per policy */
  links?: readonly ChainLink[]
  /**
   * intermediates of the last full handshake's chain past the depth: a session it made resumes
   * with that count (the resumed session has no chain to count), never with a shorter one
   */
  beyond?: number | undefined
  /** a session of this certificate needs this entry's verdict: evicting it drops the policy's tickets */
  pinned?: boolean
}

export class PeerCertCache {
  private readonly byPolicy = new WeakMap<object, Map<string, PeerEntry>>()
  private readonly max: number
  private readonly onPinnedEvicted: (policy: object) => void

  constructor(max = MAX_PER_POLICY, onPinnedEvicted: (policy: object) => void = () => undefined) {
    this.max = max
    this.onPinnedEvicted = onPinnedEvicted
  }

  /** The entry for `der` under `policy`, made with `facts(der)` when there is none. */
  entry(policy: object, der: Buffer, facts: (der: Buffer) => ClientCertFacts | undefined): PeerEntry {
    let m = this.byPolicy.get(policy)
    if (m === undefined) {
      m = new Map()
      this.byPolicy.set(policy, m)
    }
    const key = der.toString('latin1')
    let e = m.get(key)
    if (e === undefined) {
      if (m.size >= this.max) {
        const [oldest, gone] = m.entries().next().value as [string, PeerEntry]
        m.delete(oldest)
        if (gone.pinned) this.onPinnedEvicted(policy)
      }
      e = { facts: facts(der), intermediates: undefined }
      m.set(key, e)
    }
    return e
  }

  /** Entries kept for `policy` (for tests). */
  size(policy: object): number {
    return this.byPolicy.get(policy)?.size ?? 0
  }
}
