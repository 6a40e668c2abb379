/**
 * OCSP for stapling (RFC 6960): the request for one certificate, and the checks of a response
 * (status, the CertID asked about, thisUpdate/nextUpdate, the signature by the issuer or by a
 * responder certificate the issuer delegated with id-kp-OCSPSigning). Pure except for
 * node:crypto's hashing and signature checks; the fetch lives with its cache (core/tls/stapling.ts).
 */
import { createHash, verify as verifySignature, X509Certificate } from 'node:crypto'
import { readTime } from './cert.js'
import { SIGNATURE_HASH } from './crl.js'
import { certPathFacts } from './extensions.js'
import { children, decodeOid, DerError, expectTag, readDer, TAG, type DerNode } from './der.js'
import { OID } from './oids.js'

const SHA1_OID = Buffer.from('06052b0e03021a0500', 'hex') // AlgorithmIdentifier content: sha1, NULL params

/** DER of a TLV with a short or long length. */
function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length
  const len = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff])
  return Buffer.concat([Buffer.from([tag]), len, content])
}

/** The BIT STRING content of a certificate's subjectPublicKey (what issuerKeyHash hashes). */
function publicKeyBits(der: Buffer): Buffer {
  const cert = readDer(der, 0)
  const tbs = children(der, cert)[0] as DerNode
  const fields = children(der, tbs)
  const at = fields[0]?.cls === 2 && fields[0].tag === 0 ? 1 : 0
  const spki = expectTag(fields[at + 5], TAG.SEQUENCE, 'subjectPublicKeyInfo')
  const bits = expectTag(children(der, spki)[1], TAG.BIT_STRING, 'subjectPublicKey')
  return der.subarray(bits.contentStart + 1, bits.end)
}

/** The CertID (SHA-1, as every responder takes) of `cert` issued by `issuer`. */
export function certId(cert: Buffer, issuer: Buffer): Buffer {
  const c = certPathFacts(cert)
  const nameHash = createHash('sha1').update(c.issuerDer).digest()
  const keyHash = createHash('sha1').update(publicKeyBits(issuer)).digest()
  return tlv(0x30, Buffer.concat([tlv(0x30, SHA1_OID), tlv(0x04, nameHash), tlv(0x04, keyHash), tlv(0x02, c.serial)]))
}

/** An OCSPRequest for one certificate, without a nonce (responses are cached and shared). */
export function ocspRequest(cert: Buffer, issuer: Buffer): Buffer {
  const request = tlv(0x30, certId(cert, issuer))
  return tlv(0x30, tlv(0x30, tlv(0x30, request)))
}

/** The OCSP responder a certificate's authorityInfoAccess names (http only), or undefined. */
export function ocspUrl(cert: X509Certificate): string | undefined {
  const m = /OCSP - URI:(http:\/\/[^\s,]+)/.exec(cert.infoAccess ?? '')
  return m?.[1]
}

/** A checked response: good for `cert` until `nextUpdate` (undefined: the responder gave none). */
export type OcspResult = { readonly ok: true; readonly thisUpdate: number; readonly nextUpdate: number | undefined } | { readonly ok: false; readonly error: string }

/**
 * Checks a DER OCSPResponse for `cert` (issued by `issuer`) at `nowMs`: successful, of the basic
 * type, a SingleResponse for this CertID whose status is good and whose times hold, and (unless
 * `skipVerify`) signed by the issuer or by a certificate the issuer signed for OCSP signing.
 */
export function checkOcspResponse(der: Buffer, cert: Buffer, issuer: Buffer, nowMs: number, skipVerify: boolean): OcspResult {
  try {
    const top = expectTag(readDer(der, 0), TAG.SEQUENCE, 'OCSPResponse')
    const [status, bytes] = children(der, top)
    if (!status || status.tag !== 10) throw new DerError('expected responseStatus')
    const code = der[status.contentStart]
    if (code !== 0) return { ok: false, error: `the responder answered status ${code} (not successful)` }
    if (!bytes || bytes.cls !== 2 || bytes.tag !== 0) throw new DerError('no responseBytes')
    const rb = children(der, readDer(der, bytes.contentStart, bytes.end))
    const type = expectTag(rb[0], TAG.OID, 'responseType')
    if (decodeOid(der.subarray(type.contentStart, type.end)) !== OID.ocspBasic) return { ok: false, error: 'not a basic OCSP response' }
    const octets = rb[1]
    if (!octets || octets.tag !== 4) throw new DerError('expected the response OCTET STRING')
    const basic = readDer(der, octets.contentStart, octets.end)
    const [tbs, alg, sig, certsNode] = children(der, basic)
    const tbsNode = expectTag(tbs, TAG.SEQUENCE, 'tbsResponseData')
    const fields = children(der, tbsNode)
    let i = fields[0]?.cls === 2 && fields[0].tag === 0 ? 1 : 0 // version
    i += 2 // responderID, producedAt
    const responses = expectTag(fields[i], TAG.SEQUENCE, 'responses')
    const wanted = certId(cert, issuer)
    let found: { status: number; thisUpdate: number; nextUpdate: number | undefined } | undefined
    for (const single of children(der, responses)) {
      const [id, st, thisUpd, ...rest] = children(der, single)
      if (!id || !st) continue
      if (!der.subarray(id.start, id.end).equals(wanted)) continue
      const next = rest.find((n) => n.cls === 2 && n.tag === 0)
      found = {
        status: st.cls === 2 ? st.tag : -1,
        thisUpdate: readTime(der, thisUpd),
        nextUpdate: next ? readTime(der, readDer(der, next.contentStart, next.end)) : undefined,
      }
    }
    if (!found) return { ok: false, error: 'the response does not cover this certificate' }
    if (found.status !== 0) return { ok: false, error: found.status === 1 ? 'the responder says the certificate is revoked' : 'the responder does not know the certificate' }
    if (Number.isNaN(found.thisUpdate) || found.thisUpdate > nowMs + 300_000) return { ok: false, error: 'the response thisUpdate is in the future' }
    if (found.nextUpdate !== undefined && found.nextUpdate < nowMs) return { ok: false, error: 'the response is past its nextUpdate' }
    if (!skipVerify) {
      const algNode = expectTag(children(der, expectTag(alg, TAG.SEQUENCE, 'signatureAlgorithm'))[0], TAG.OID, 'signature algorithm')
      const algOid = decodeOid(der.subarray(algNode.contentStart, algNode.end))
      const hash = SIGNATURE_HASH[algOid]
      if (hash === undefined) return { ok: false, error: `the response is signed with an algorithm this gateway does not verify (${algOid})` }
      const signed = der.subarray(tbsNode.start, tbsNode.end)
      const sigNode = expectTag(sig, TAG.BIT_STRING, 'signature')
      const signature = der.subarray(sigNode.contentStart + 1, sigNode.end)
      const issuerX = new X509Certificate(issuer)
      const signers: X509Certificate[] = [issuerX]
      if (certsNode && certsNode.cls === 2 && certsNode.tag === 0) {
        for (const c of children(der, readDer(der, certsNode.contentStart, certsNode.end))) {
          const x = new X509Certificate(der.subarray(c.start, c.end))
          // a delegated responder: issued by the issuer, for OCSP signing
          if (x.checkIssued(issuerX) && x.verify(issuerX.publicKey) && (x.keyUsage ?? []).includes(OID.ocspSigning)) signers.push(x)
        }
      }
      if (!signers.some((s) => verifySignature(hash, signed, s.publicKey, signature))) return { ok: false, error: 'the response signature does not verify with the issuer or a delegated responder' }
    }
    return { ok: true, thisUpdate: found.thisUpdate, nextUpdate: found.nextUpdate }
  } catch (e) {
    if (e instanceof DerError) return { ok: false, error: `the response cannot be read: ${e.message}` }
    return { ok: false, error: e instanceof Error ? e.message : String(e) }
  }
}
