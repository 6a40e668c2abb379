/**
 * The client certificate's DER, read from the TLS session instead of Node's certificate object.
 *
 * `getPeerCertificate(false)` on a fresh connection costs 60–100 µs for an RSA leaf and more for
 * an EC one (measured on Node 20.20 / OpenSSL 3.0: it formats the public key, the subject, three
 * fingerprints …, all of which we compute ourselves from the DER, once per certificate), which was
 * about a sixth of a whole mTLS handshake's CPU. `getPeerX509Certificate()` is no way out: on a
 * connection whose client sent intermediates it empties the peer chain, and the depth check then
 * reads a chain without them (measured). `getSession()` is an i2d of OpenSSL's SSL_SESSION
 * (10–16 µs), whose ASN.1 form holds the peer certificate as `[3] EXPLICIT Certificate`
 * (ssl/ssl_asn1.c, unchanged since OpenSSL 1.0), and leaves the chain alone.
 */
import { readDer, TAG, DerError } from './der.js'

/** Context-specific, constructed, tag 3: the `peer` field of SSL_SESSION_ASN1. */
const PEER = 3

/**
 * The DER of the peer certificate in an encoded SSL_SESSION; undefined when there is none (no
 * client certificate) or the bytes are not a session we can walk (the caller then asks Node).
 */
export function peerCertFromSession(session: Uint8Array | undefined): Buffer | undefined {
  if (session === undefined || session.length === 0) return undefined
  try {
    const top = readDer(session, 0)
    if (top.cls !== 0 || top.tag !== TAG.SEQUENCE || !top.constructed) return undefined
    for (let p = top.contentStart; p < top.end; ) {
      const field = readDer(session, p, top.end)
      if (field.cls === 2 && field.tag === PEER && field.constructed) {
        const cert = readDer(session, field.contentStart, field.end)
        if (cert.cls !== 0 || cert.tag !== TAG.SEQUENCE || cert.end !== field.end) return undefined
        const buf = Buffer.isBuffer(session) ? session : Buffer.from(session.buffer, session.byteOffset, session.byteLength)
        // a copy: the certificate outlives the session's bytes in the per-policy cache
        return Buffer.from(buf.subarray(cert.start, cert.end))
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
