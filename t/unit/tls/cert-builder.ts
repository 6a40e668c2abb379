// Test helper (not a test): X.509 certificates with hand-made names, serials and dates, built with
// node-forge's ASN.1 so that string types, multi-valued RDNs and odd encodings are under control.
import { generateKeyPairSync } from 'node:crypto'
import * as forgeNs from 'node-forge'

// node-forge is CommonJS: its namespace arrives under default at run time
const forge = ((forgeNs as unknown as { default?: typeof forgeNs }).default ?? forgeNs) as typeof forgeNs
const { asn1, pki } = forge

/** One attribute: OID, universal tag of the value (T.RAW: the value is a whole TLV), value bytes (a string is taken as UTF-8). */
export type Attr = readonly [oid: string, tag: number, value: string | Buffer]
/** A name as its RDNs, each one or more attributes (several = a multi-valued RDN). */
export type NameSpec = readonly (readonly Attr[])[]

/** Universal tags used in names. */
export const T = { RAW: -1, INTEGER: 2, OCTET: 4, UTF8: 12, SEQUENCE: 16, NUMERIC: 18, PRINTABLE: 19, T61: 20, VIDEOTEX: 21, IA5: 22, UNIVERSAL: 28, BMP: 30 } as const

export interface CertSpec {
  readonly subject: NameSpec
  readonly issuer?: NameSpec
  /** INTEGER content octets of the serial. */
  readonly serial?: Buffer
  readonly notBefore?: Date
  readonly notAfter?: Date
  /** Signs with this key (PEM); the certificate's public key is `publicKeyPem`. */
  readonly signerKeyPem?: string
  readonly publicKeyPem?: string
  /** Extensions as forge takes them (basicConstraints for CAs). */
  readonly extensions?: readonly object[]
}

export interface KeyPair {
  readonly privateKeyPem: string
  readonly publicKeyPem: string
}

/** A fast RSA key pair (node:crypto), PEM-encoded. */
export function makeKeyPair(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  }
}

const bin = (v: string | Buffer): Buffer => (typeof v === 'string' ? Buffer.from(v, 'utf8') : v)

/** One DER element (definite length), built by hand so string contents go out byte for byte. */
export function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length
  const len = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff])
  return Buffer.concat([Buffer.from([tag]), len, content])
}

function nameDer(spec: NameSpec): Buffer {
  const atv = ([oid, tag, value]: Attr): Buffer => {
    const type = tlv(0x06, Buffer.from(asn1.oidToDer(oid).getBytes(), 'latin1'))
    return tlv(0x30, Buffer.concat([type, tag === T.RAW ? bin(value) : tlv(tag, bin(value))]))
  }
  return tlv(0x30, Buffer.concat(spec.map((rdn) => tlv(0x31, Buffer.concat(rdn.map(atv))))))
}

const forgeDer = (node: forgeNs.asn1.Asn1): Buffer => Buffer.from(asn1.toDer(node).getBytes(), 'latin1')

/** A DER certificate per `spec`, self-signed by `key` unless `signerKeyPem` says otherwise. */
export function buildCertDer(spec: CertSpec, key: KeyPair): Buffer {
  const cert = pki.createCertificate()
  cert.publicKey = pki.publicKeyFromPem(spec.publicKeyPem ?? key.publicKeyPem)
  cert.serialNumber = '01'
  cert.validity.notBefore = spec.notBefore ?? new Date(Date.UTC(2020, 11, 1, 10, 19, 57))
  cert.validity.notAfter = spec.notAfter ?? new Date(Date.UTC(2042, 7, 18, 10, 19, 57))
  cert.setSubject([{ shortName: 'CN', value: 'placeholder' }])
  cert.setIssuer([{ shortName: 'CN', value: 'placeholder' }])
  if (spec.extensions) cert.setExtensions([...spec.extensions])
  const signer = pki.privateKeyFromPem(spec.signerKeyPem ?? key.privateKeyPem)
  cert.sign(signer, forge.md.sha256.create())
  const full = pki.certificateToAsn1(cert)
  const [tbs, sigAlg] = full.value as forgeNs.asn1.Asn1[]
  // [0] version, serial, signature alg, issuer, validity, subject, spki, [3] extensions
  const fields = (tbs!.value as forgeNs.asn1.Asn1[]).map(forgeDer)
  if (spec.serial) fields[1] = tlv(0x02, spec.serial)
  fields[3] = nameDer(spec.issuer ?? spec.subject)
  fields[5] = nameDer(spec.subject)
  const tbsDer = tlv(0x30, Buffer.concat(fields))
  const md = forge.md.sha256.create()
  md.update(tbsDer.toString('latin1'))
  const signature = Buffer.from(signer.sign(md), 'latin1')
  return tlv(0x30, Buffer.concat([tbsDer, forgeDer(sigAlg!), tlv(0x03, Buffer.concat([Buffer.from([0]), signature]))]))
}
/** PEM of a DER certificate. */
export const pemOf = (der: Buffer): string => `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END CERTIFICATE-----\n`
