/**
 * Revocation on connections that are already open (CONTRACT.md "Revocation"): the next request
 * after a change of an ssl object's `client.crl` is judged against the new CRLs. A connection's
 * verdict is kept per generation (one identity test per request while nothing changes) and,
 * under CRLs with a nextUpdate, until the earliest of them (a CRL that expires fails closed).
 */
import { checkRevocation } from '../x509/crl.js'
import { verifyErrorText } from '../x509/cert.js'
import type { TlsPolicy } from './contexts.js'
import type { TlsFacts } from './facts.js'
import type { SniIndex } from './sni-index.js'

interface Judged {
  sni: SniIndex<TlsPolicy>
  facts: TlsFacts
  until: number
}

const judged = new WeakMap<TlsFacts, Judged>()

/**
 * The facts a request on this connection is judged with: the handshake's, or, when the current
 * generation holds another version of the connection's ssl object, with `verify`, the
 * certificate's `verified` and the `client` rules (skip list, CRLs) of that version.
 */
export function liveFacts(facts: TlsFacts, sni: SniIndex<TlsPolicy>, nowMs: number): TlsFacts {
  if (!facts.client) return facts
  const j = judged.get(facts)
  if (j !== undefined && j.sni === sni && nowMs <= j.until) return j.facts
  const policy = sni.lookup(facts.matchSni)
  // the object is gone or another one serves the name now: the handshake's verdict stands
  const rules = policy !== undefined && policy.id === facts.sslId ? policy.client : undefined
  let out = facts
  let until = Infinity
  if (rules && facts.chainOk && facts.links) {
    const error = rules.crls ? checkRevocation(facts.links(), rules.crls, nowMs) : undefined
    if (rules.crls && error !== 'CRL_HAS_EXPIRED') until = rules.crls.earliestNextUpdate
    const verify = error === undefined ? 'SUCCESS' : `FAILED:${verifyErrorText(error)}`
    if (verify !== facts.verify || rules !== facts.client) {
      const cert = facts.clientCert
      out = {
        ...facts,
        verify,
        client: rules,
        clientCert: cert && cert.verify !== verify ? { ...cert, verified: error === undefined, verify } : cert,
      }
    }
  }
  judged.set(facts, { sni, facts: out, until })
  return out
}
