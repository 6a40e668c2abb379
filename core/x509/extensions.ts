/**
 * The certificate extensions RFC 5280 path validation reads, from the one TBSCertificate walk
 * (cert.ts readTbs): basicConstraints (cA, pathLen), keyUsage, nameConstraints, the
 * subjectAltName names they constrain, and which critical extensions this code does not know.
 * Pure; throws DerError on malformed input.
 */
import { readTbs } from './cert.js'
import { children, decodeOid, DerError, readDer, TAG, type DerNode } from './der.js'
import { OID } from './oids.js'

/** A GeneralName of the forms name constraints apply to; `other` for the rest. */
export type GeneralName =
  | { readonly type: 'dns'; readonly value: string }
  | { readonly type: 'email'; readonly value: string }
  | { readonly type: 'ip'; readonly bytes: Buffer }
  | { readonly type: 'dir'; readonly rdns: readonly string[] }
  | { readonly type: 'uri'; readonly value: string }
  | { readonly type: 'other'; readonly tag: number }

/** A name constraint subtree: a GeneralName as a base (an IP base carries address and mask). */
export interface NameConstraints {
  readonly permitted: readonly GeneralName[]
  readonly excluded: readonly GeneralName[]
}

/** What path validation needs from one certificate. */
export interface CertPathFacts {
  /** the issuer Name's DER (the key of its issuer's CRL) */
  readonly issuerDer: Buffer
  readonly subjectDer: Buffer
  /** the subject as RDN DERs, in order (for directoryName constraints) */
  readonly subjectRdns: readonly string[]
  /** emailAddress attributes of the subject (name constraints treat them as rfc822 names) */
  readonly subjectEmails: readonly string[]
  /** commonName attributes of the subject as text (a leaf's host-like CN meets dNSName constraints) */
  readonly subjectCns: readonly string[]
  /** the serial's content octets (the key of the CRL entry) */
  readonly serial: Buffer
  /** undefined: no basicConstraints extension */
  readonly basicConstraints: { readonly ca: boolean; readonly pathLen: number | undefined } | undefined
  /** keyUsage bits (bit 0 = digitalSignature … bit 5 = keyCertSign, 6 = cRLSign); undefined without the extension */
  readonly keyUsage: number | undefined
  readonly nameConstraints: NameConstraints | undefined
  readonly sans: readonly GeneralName[]
  /** dotted OIDs of critical extensions this validator does not process */
  readonly unknownCritical: readonly string[]
}

export const KU_KEY_CERT_SIGN = 1 << 5
export const KU_CRL_SIGN = 1 << 6

// Extensions OpenSSL's verifier processes (X509_supported_extension), so a critical one is fine.
const KNOWN = new Set([
  OID.basicConstraints, OID.keyUsage, OID.subjectAltName, OID.nameConstraints,
  '2.5.29.37', // extendedKeyUsage
  '2.5.29.32', // certificatePolicies
  '2.5.29.33', // policyMappings
  '2.5.29.36', // policyConstraints
  '2.5.29.54', // inhibitAnyPolicy
  '2.5.29.14', // subjectKeyIdentifier
  OID.authorityKeyIdentifier,
  '2.16.840.1.113730.1.1', // netscape cert type
  '1.3.6.1.5.5.7.1.14', // proxyCertInfo
])

/** A directory string's text: UTF8String, BMPString (UTF-16BE), UniversalString (UTF-32BE), else one byte a character. */
function stringValue(buf: Uint8Array, n: DerNode): string {
  const bytes = Buffer.from(buf.subarray(n.contentStart, n.end))
  if (n.cls !== 0) return bytes.toString('latin1')
  if (n.tag === 12) return bytes.toString('utf8')
  if (n.tag === 30) return bytes.length % 2 === 0 ? Buffer.from(bytes).swap16().toString('utf16le') : '\ufffd'
  if (n.tag === 28) {
    let out = ''
    for (let i = 0; i + 4 <= bytes.length; i += 4) {
      const c = bytes.readUInt32BE(i)
      out += c <= 0x10ffff ? String.fromCodePoint(c) : '\ufffd'
    }
    return out
  }
  return bytes.toString('latin1')
}

const latin1 = (buf: Uint8Array, n: DerNode): string => Buffer.from(buf.buffer, buf.byteOffset + n.contentStart, n.end - n.contentStart).toString('latin1')
const slice = (buf: Uint8Array, from: number, to: number): Buffer => Buffer.from(buf.subarray(from, to))

/** One GeneralName node (context-tagged) → its form. */
export function readGeneralName(buf: Uint8Array, n: DerNode): GeneralName {
  if (n.cls !== 2) return { type: 'other', tag: -1 }
  switch (n.tag) {
    case 1:
      return { type: 'email', value: latin1(buf, n) }
    case 2:
      return { type: 'dns', value: latin1(buf, n) }
    case 4: {
      const name = readDer(buf, n.contentStart, n.end)
      return { type: 'dir', rdns: children(buf, name).map((r) => latin1(buf, { ...r, contentStart: r.start })) }
    }
    case 6:
      return { type: 'uri', value: latin1(buf, n) }
    case 7:
      return { type: 'ip', bytes: slice(buf, n.contentStart, n.end) }
    default:
      return { type: 'other', tag: n.tag }
  }
}

function readNameConstraints(buf: Uint8Array, value: DerNode): NameConstraints {
  const permitted: GeneralName[] = []
  const excluded: GeneralName[] = []
  for (const part of children(buf, value)) {
    if (part.cls !== 2 || (part.tag !== 0 && part.tag !== 1)) throw new DerError('unexpected field in NameConstraints')
    for (const subtree of children(buf, part)) {
      const base = children(buf, subtree)[0]
      if (!base) throw new DerError('empty GeneralSubtree')
      ;(part.tag === 0 ? permitted : excluded).push(readGeneralName(buf, base))
    }
  }
  return { permitted, excluded }
}

/** Reads the path-validation facts of a DER certificate. Throws DerError when it cannot. */
export function certPathFacts(der: Uint8Array): CertPathFacts {
  const f = readTbs(der)
  let basicConstraints: CertPathFacts['basicConstraints']
  let keyUsage: number | undefined
  let nameConstraints: NameConstraints | undefined
  let sans: GeneralName[] = []
  const unknownCritical: string[] = []
  for (const ext of f.extensions ? children(der, f.extensions) : []) {
    const [idNode, second, third] = children(der, ext)
    if (!idNode || idNode.tag !== TAG.OID) throw new DerError('extension without an OID')
    const oid = decodeOid(der.subarray(idNode.contentStart, idNode.end))
    const critical = second?.tag === 1 && second.cls === 0 ? der[second.contentStart] !== 0 : false
    const octets = second?.tag === 4 && second.cls === 0 ? second : third
    if (!octets || octets.tag !== 4) throw new DerError('extension without a value')
    const value = readDer(der, octets.contentStart, octets.end)
    if (oid === OID.basicConstraints) {
      let ca = false
      let pathLen: number | undefined
      for (const c of children(der, value)) {
        if (c.tag === 1) ca = der[c.contentStart] !== 0
        else if (c.tag === TAG.INTEGER) pathLen = Number.parseInt(Buffer.from(der.subarray(c.contentStart, c.end)).toString('hex') || '0', 16)
      }
      basicConstraints = { ca, pathLen }
    } else if (oid === OID.keyUsage) {
      // BIT STRING: first octet is the unused-bit count, then bits from the most significant
      const bits = der.subarray(value.contentStart + 1, value.end)
      let ku = 0
      for (let i = 0; i < Math.min(bits.length, 2); i++) for (let b = 0; b < 8; b++) if (bits[i]! & (0x80 >> b)) ku |= 1 << (i * 8 + b)
      keyUsage = ku
    } else if (oid === OID.nameConstraints) {
      nameConstraints = readNameConstraints(der, value)
    } else if (oid === OID.subjectAltName) {
      sans = children(der, value).map((n) => readGeneralName(der, n))
    } else if (critical && !KNOWN.has(oid)) {
      unknownCritical.push(oid)
    }
  }
  const subjectNode = f.subject
  const subjectRdns = children(der, subjectNode).map((r) => latin1(der, { ...r, contentStart: r.start }))
  const subjectEmails: string[] = []
  const subjectCns: string[] = []
  for (const rdn of children(der, subjectNode)) {
    for (const atv of children(der, rdn)) {
      const [type, value] = children(der, atv)
      if (!type || !value) continue
      const oid = decodeOid(der.subarray(type.contentStart, type.end))
      if (oid === OID.emailAddress) subjectEmails.push(latin1(der, value))
      else if (oid === OID.commonName) subjectCns.push(stringValue(der, value))
    }
  }
  return {
    issuerDer: slice(der, f.issuer.start, f.issuer.end),
    subjectDer: slice(der, subjectNode.start, subjectNode.end),
    subjectRdns,
    subjectEmails,
    subjectCns,
    serial: slice(der, f.serial.contentStart, f.serial.end),
    basicConstraints,
    keyUsage,
    nameConstraints,
    sans,
    unknownCritical,
  }
}

const lower = (s: string): string => s.toLowerCase()

/** RFC 5280 §4.2.1.10 matching of one name against one constraint base of the same form. */
function within(name: GeneralName, base: GeneralName): boolean {
  if (name.type === 'dns' && base.type === 'dns') {
    const n = lower(name.value)
    const b = lower(base.value)
    if (b === '') return true
    if (b.startsWith('.')) return n.endsWith(b)
    return n === b || n.endsWith(`.${b}`)
  }
  if (name.type === 'email' && base.type === 'email') {
    const n = name.value
    const b = base.value
    const at = n.lastIndexOf('@')
    const host = lower(n.slice(at + 1))
    if (b.includes('@')) return n.slice(0, at) === b.slice(0, b.lastIndexOf('@')) && host === lower(b.slice(b.lastIndexOf('@') + 1))
    if (b.startsWith('.')) return host.endsWith(lower(b))
    return host === lower(b)
  }
  if (name.type === 'ip' && base.type === 'ip') {
    const len = name.bytes.length
    if (base.bytes.length !== 2 * len) return false
    for (let i = 0; i < len; i++) {
      const mask = base.bytes[len + i]!
      if ((name.bytes[i]! & mask) !== (base.bytes[i]! & mask)) return false
    }
    return true
  }
  if (name.type === 'dir' && base.type === 'dir') {
    if (base.rdns.length > name.rdns.length) return false
    return base.rdns.every((r, i) => r === name.rdns[i])
  }
  if (name.type === 'uri' && base.type === 'uri') {
    const host = lower(/^[a-z][a-z0-9+.-]*:\/\/(?:[^@/]*@)?([^:/?#]*)/i.exec(name.value)?.[1] ?? '')
    const b = lower(base.value)
    return b.startsWith('.') ? host.endsWith(b) : host === b
  }
  return false
}

/**
 * A CN as the DNS name OpenSSL takes it for (cn2dnsid in crypto/x509/v3_ncons.c): trailing NULs
 * dropped, then two or more labels of ASCII letters, digits and `_`, with `-` inside a label only;
 * undefined for anything else ("Alice Smith", a one-label "localhost"), which no dNSName
 * constraint applies to. An embedded NUL is an error (null).
 */
export function cnAsDnsName(cn: string): string | undefined | null {
  const v = cn.replace(/\0+$/, '')
  if (v.includes('\0')) return null
  return /^[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?)+$/.test(v) ? v : undefined
}

/**
 * The first name of `cert` that `nc` does not allow, as text for the message; undefined when all
 * are allowed. The subject (when not empty) counts as a directoryName, its emailAddress
 * attributes as rfc822 names, with the subjectAltName entries. For the `leaf` without a SAN
 * dNSName, each CN that looks like a host name counts as a dNSName too, as in OpenSSL's
 * check_name_constraints (a certificate naming its host in the CN alone cannot leave the CA's
 * permitted DNS subtrees).
 */
export function nameConstraintViolation(cert: CertPathFacts, nc: NameConstraints, leaf = false): string | undefined {
  const names: GeneralName[] = [...cert.sans, ...cert.subjectEmails.map((value): GeneralName => ({ type: 'email', value }))]
  if (cert.subjectRdns.length > 0) names.push({ type: 'dir', rdns: cert.subjectRdns })
  const cnNames = new Set<GeneralName>()
  if (leaf && !cert.sans.some((n) => n.type === 'dns')) {
    for (const cn of cert.subjectCns) {
      const host = cnAsDnsName(cn)
      if (host === null) return 'the subject CN holds a NUL character and cannot be checked against the subtrees'
      if (host === undefined) continue
      const name: GeneralName = { type: 'dns', value: host }
      cnNames.add(name)
      names.push(name)
    }
  }
  for (const name of names) {
    const label = name.type === 'dir' ? 'the subject' : name.type === 'ip' ? `IP ${[...name.bytes].join('.')}` : name.type === 'other' ? 'a name' : name.type === 'dns' && cnNames.has(name) ? `the subject CN ${name.value}` : `${name.type} ${name.value}`
    if (nc.excluded.some((b) => b.type === name.type && within(name, b))) return `${label} is in an excluded subtree`
    const permitted = nc.permitted.filter((b) => b.type === name.type)
    if (permitted.length > 0 && !permitted.some((b) => within(name, b))) return `${label} is outside the permitted subtrees`
  }
  return undefined
}
