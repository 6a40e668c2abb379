/**
 * The client certificate's DER, read from the TLS session instead of Node's certificate object.
 *
 * `getPeerCertificate(false)` on a fresh connection costs 60–100 µs for an RSA leaf (measured on
 * Node 20.20 / OpenSSL 3.0: it formats the public key, the names and three fingerprints, all of
 * which we derive from the DER ourselves, once per certificate). `getPeerX509Certificate()` is no
 * way out: on a connection whose client sent intermediates it empties the peer chain, and the
 * depth check would then read a chain without them (measured). `getSession()` is an i2d of
 * OpenSSL's SSL_SESSION (10–16 µs), whose ASN.1 form (ssl/ssl_asn1.c) holds the peer certificate
 * as `[3] EXPLICIT Certificate`, and it leaves the chain alone.
 */
import { readDer, TAG, DerError } from './der.js'

/** Context-specific, constructed, tag 3: the `peer` field of SSL_SESSION_ASN1. */
const PEER = 3

/**
 * The DER of the peer certificate in an encoded SSL_SESSION; undefined when there is none (no
 * client certificate) or the bytes are not a session we can walk (the caller then asks Node).
 */
export function peerCertFromSession(session: Buffer | undefined): Buffer | undefined {
  if (session === undefined || session.length === 0) return undefined
  try {
    const top = readDer(session, 0)
    if (top.cls !== 0 || top.tag !== TAG.SEQUENCE || !top.constructed) return undefined
    for (let p = top.contentStart; p < top.end; ) {
      const field = readDer(session, p, top.end)
      if (field.cls === 2 && field.tag === PEER && field.constructed) {
        const cert = readDer(session, field.contentStart, field.end)
        if (cert.cls !== 0 || cert.tag !== TAG.SEQUENCE || cert.end !== field.end) return undefined
        // a copy: the certificate outlives the session's bytes in the per-policy cache
        return Buffer.from(session.subarray(cert.start, cert.end))
      }
      // the fields come in tag order: past [3] there is no peer
      if (field.cls === 2 && field.tag > PEER) return undefined
      p = field.end
    }
    return undefined
  } catch (err) {
    if (err instanceof DerError) return undefined
    throw err
  }
}
