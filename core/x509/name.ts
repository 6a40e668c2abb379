import { children, decodeOid, DerError, expectTag, readDer, TAG, type DerNode } from './der.js'
import { oidShortName } from './oids.js'

/** One attribute of a distinguished name, in certificate order. */
export interface DnAttribute {
  /** Dotted OID of the attribute type. */
  readonly oid: string
  /** OpenSSL's short name (`CN`, `emailAddress`…), undefined for OIDs OpenSSL does not know. */
  readonly shortName: string | undefined
  /** Universal tag of the value (12 UTF8String, 19 PrintableString…), or -1 for other classes. */
  readonly tag: number
  /** The value's content octets. */
  readonly value: Uint8Array
  /** The value's whole DER element (for `#`-hex dumps). */
  readonly der: Uint8Array
  /** Index of the RDN (SET) the attribute belongs to; equal indexes form a multi-valued RDN. */
  readonly rdn: number
}

/**
 * Reads a Name (SEQUENCE OF SET OF AttributeTypeAndValue) into a flat attribute list, keeping
 * the order of the encoding, as OpenSSL's X509_NAME does. Throws DerError on malformed input.
 */
export function readName(buf: Uint8Array, name: DerNode): DnAttribute[] {
  expectTag(name, TAG.SEQUENCE, 'Name')
  const out: DnAttribute[] = []
  children(buf, name).forEach((set, rdn) => {
    expectTag(set, TAG.SET, 'RelativeDistinguishedName')
    for (const atv of children(buf, set)) {
      expectTag(atv, TAG.SEQUENCE, 'AttributeTypeAndValue')
      const [type, value, extra] = children(buf, atv)
      const oidNode = expectTag(type, TAG.OID, 'attribute type')
      if (!value || extra) throw new DerError('AttributeTypeAndValue must hold a type and one value')
      const oid = decodeOid(buf.subarray(oidNode.contentStart, oidNode.end))
      out.push({
        oid,
        shortName: oidShortName(oid),
        tag: value.cls === 0 ? value.tag : -1,
        value: buf.subarray(value.contentStart, value.end),
        der: buf.subarray(value.start, value.end),
        rdn,
      })
    }
  })
  return out
}

/** Reads a DER-encoded Name on its own. */
export function readNameDer(der: Uint8Array): DnAttribute[] {
  return readName(der, readDer(der, 0))
}

// Bytes per character of the string types OpenSSL prints as text (a_strex.c tag2nbyte):
// 0 = UTF8String, read byte by byte; other universal tags are dumped as `#` + hex DER.
const widthByTag: Readonly<Record<number, number>> = { 12: 0, 18: 1, 19: 1, 20: 1, 22: 1, 23: 1, 24: 1, 26: 1, 28: 4, 30: 2 }

// RFC 2253 specials OpenSSL always escapes with a backslash (its char_type table, ESC_2253 bit).
const SPECIAL = new Set([0x22, 0x2b, 0x2c, 0x3b, 0x3c, 0x3e, 0x5c]) // " + , ; < > \
const HEX = '0123456789ABCDEF'
const hexByte = (b: number): string => HEX[b >> 4]! + HEX[b & 15]!

/** One byte of output, escaped as OpenSSL's do_esc_char does under ASN1_STRFLGS_RFC2253. */
function escByte(b: number, first: boolean, last: boolean): string {
  if (b > 0x7f || b < 0x20 || b === 0x7f) return `\\${hexByte(b)}`
  if (SPECIAL.has(b)) return `\\${String.fromCharCode(b)}`
  if (b === 0x20 && (first || last)) return '\\ '
  if (b === 0x23 && first) return '\\#'
  return String.fromCharCode(b)
}

/** UTF-8 bytes of a code point, or none where OpenSSL's UTF8_putc refuses it (surrogates, > U+10FFFF). */
function utf8(c: number): number[] {
  if (c < 0x80) return [c]
  if (c < 0x800) return [0xc0 | (c >> 6), 0x80 | (c & 0x3f)]
  if (c < 0x10000) return c >= 0xd800 && c <= 0xdfff ? [] : [0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)]
  if (c < 0x110000) return [0xf0 | (c >> 18), 0x80 | ((c >> 12) & 0x3f), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)]
  return []
}

/** The hex dump OpenSSL prints for values it does not show as text: `#` and the DER, upper case. */
const dump = (der: Uint8Array): string => `#${Array.from(der, hexByte).join('')}`

/** One value as X509_NAME_print_ex(XN_FLAG_RFC2253) prints it; undefined where OpenSSL fails. */
export function formatValue(attr: DnAttribute): string | undefined {
  if (attr.shortName === undefined) return dump(attr.der) // XN_FLAG_DUMP_UNKNOWN_FIELDS
  const width = widthByTag[attr.tag]
  if (width === undefined) return dump(attr.der) // ASN1_STRFLGS_DUMP_UNKNOWN + DUMP_DER
  const v = attr.value
  if ((width === 2 && v.length % 2 !== 0) || (width === 4 && v.length % 4 !== 0)) return undefined
  const step = width === 0 ? 1 : width
  let out = ''
  for (let i = 0; i < v.length; i += step) {
    // First/last flags are decided per character, before the UTF-8 conversion (do_buf); a
    // one-character value counts as last only, so a lone `#` is not escaped, as in OpenSSL.
    const first = i === 0
    const last = i + step >= v.length
    let c = 0
    for (let k = 0; k < step; k++) c = c * 256 + v[i + k]!
    if (width === 0) {
      out += escByte(c, first && !last, last)
      continue
    }
    const bytes = utf8(c)
    for (const b of bytes) out += escByte(b, first && !last, last)
  }
  return out
}

/**
 * A distinguished name as nginx's `$ssl_client_s_dn` / `$ssl_client_i_dn` show it (OpenSSL
 * X509_NAME_print_ex with XN_FLAG_RFC2253): attributes in reverse order, `,` between RDNs and
 * `+` inside a multi-valued RDN, short names, unknown OIDs dotted with a `#`-hex value.
 * Undefined where OpenSSL would fail to print (nginx then leaves the variable empty).
 */
export function formatRfc2253(attrs: readonly DnAttribute[]): string | undefined {
  let out = ''
  let prev = -1
  for (let i = attrs.length - 1; i >= 0; i--) {
    const a = attrs[i]!
    if (prev !== -1) out += prev === a.rdn ? '+' : ','
    prev = a.rdn
    const value = formatValue(a)
    if (value === undefined) return undefined
    out += `${a.shortName ?? a.oid}=${value}`
  }
  return out
}
