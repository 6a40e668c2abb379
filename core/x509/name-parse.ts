/**
 * Pure parser for X.500 distinguished names written as strings: RFC 4514/2253 (`CN=a,O=b,C=FR`,
 * nginx's `$ssl_client_s_dn`) with RFC 1779's leniencies (spaces around separators and `=`,
 * `;` as separator, quoted values, `OID.` prefixes). Used by the DN patterns of ssl-enforcement
 * and mtls-auth; OpenSSL's `/C=FR/O=x` form is not accepted (Gravitee does not accept it either).
 */
import { oidOfKeyword } from './oids.js'

/** One attribute of a name: canonical type and unescaped value. */
export interface DnTextAttribute {
  /** dotted OID for a known or numeric type (`2.5.4.3` for CN), else the keyword upper-cased */
  readonly type: string
  /** the value with escapes, quotes and `#hex` resolved */
  readonly value: string
  /** per UTF-16 unit of `value`: true where an unescaped `*` or `?` was written (a wildcard in patterns) */
  readonly wild: readonly boolean[]
}

/** A relative distinguished name: one attribute, or several joined by `+`. */
export type Rdn = readonly DnTextAttribute[]

/** The result of parsing a name: its RDNs in written order, or a message saying what is wrong. */
export type DnResult = { readonly ok: true; readonly rdns: readonly Rdn[] } | { readonly ok: false; readonly error: string }

const OID_RE = /^(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))+$/
const isSpace = (c: string | undefined): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\r'
const isHex = (c: string | undefined): boolean => c !== undefined && /^[0-9a-fA-F]$/.test(c)
const utf8 = new TextDecoder('utf-8', { fatal: true })

/** DER string types RFC 4514's `#hex` form may carry → their text, or undefined for anything else. */
function derString(bytes: Uint8Array): string | undefined {
  if (bytes.length < 2) return undefined
  const tag = bytes[0] as number
  let len = bytes[1] as number
  let off = 2
  if (len & 0x80) {
    const n = len & 0x7f
    if (n === 0 || n > 3 || bytes.length < 2 + n) return undefined
    len = 0
    for (let i = 0; i < n; i++) len = len * 256 + (bytes[2 + i] as number)
    off = 2 + n
  }
  if (off + len !== bytes.length) return undefined
  const body = Buffer.from(bytes.subarray(off))
  try {
    switch (tag) {
      case 0x0c: return utf8.decode(body)
      case 0x12: case 0x13: case 0x16: case 0x1a: case 0x14: return body.toString('latin1')
      case 0x1e: return len % 2 === 0 ? Buffer.from(body).swap16().toString('utf16le') : undefined
      case 0x1c: {
        if (len % 4 !== 0) return undefined
        let s = ''
        for (let i = 0; i < len; i += 4) s += String.fromCodePoint(body.readUInt32BE(i))
        return s
      }
      default: return undefined
    }
  } catch {
    return undefined
  }
}

class Parser {
  i = 0
  constructor(
    readonly s: string,
    readonly strict: boolean,
  ) {}

  fail(why: string): never {
    throw new DnSyntaxError(`at character ${this.i + 1}: ${why}`)
  }
  skipSpaces(): void {
    while (isSpace(this.s[this.i])) this.i++
  }

  type(): string {
    this.skipSpaces()
    const m = /^[A-Za-z][A-Za-z0-9-]*|^[0-9][0-9.]*/.exec(this.s.slice(this.i, this.i + 200))
    if (!m) this.fail(this.i >= this.s.length ? 'expected an attribute type after the separator' : 'expected an attribute type such as CN')
    const start = this.i
    let word = m[0]
    this.i += word.length
    if (/^oid$/i.test(word) && this.s[this.i] === '.') {
      const n = /^\.([0-9][0-9.]*)/.exec(this.s.slice(this.i, this.i + 200))
      if (!n) this.fail('expected an OID after "OID."')
      word = n[1] as string
      this.i += n[0].length
    }
    this.skipSpaces()
    if (this.s[this.i] !== '=') this.fail(`expected "=" after ${word}`)
    this.i++
    if (/^[0-9]/.test(word)) {
      if (!OID_RE.test(word)) this.fail(`${word} is not a valid OID`)
      return word
    }
    const known = oidOfKeyword(word.toUpperCase())
    if (known) return known
    if (this.strict) {
      this.i = start
      this.fail(`unknown attribute type ${word}`)
    }
    return word.toUpperCase()
  }

  /** Hex pairs after `\`, as many as follow, decoded as UTF-8. */
  hexEscapes(): string {
    const bytes: number[] = []
    while (this.s[this.i] === '\\' && isHex(this.s[this.i + 1]) && isHex(this.s[this.i + 2])) {
      bytes.push(parseInt(this.s.slice(this.i + 1, this.i + 3), 16))
      this.i += 3
    }
    try {
      return utf8.decode(Uint8Array.from(bytes))
    } catch {
      return this.fail('escaped bytes are not valid UTF-8')
    }
  }

  /** What one `\` escape at the cursor stands for: hex pairs (UTF-8) or the character after it. */
  escaped(): string {
    if (isHex(this.s[this.i + 1]) && isHex(this.s[this.i + 2])) return this.hexEscapes()
    const next = this.s[this.i + 1]
    if (next === undefined) return this.fail('"\\" at the end of the name')
    this.i += 2
    return next
  }

  value(): { value: string; wild: boolean[] } {
    this.skipSpaces()
    const s = this.s
    let value = ''
    const wild: boolean[] = []
    const push = (text: string, isWild: boolean): void => {
      value += text
      for (let k = 0; k < text.length; k++) wild.push(isWild)
    }
    if (s[this.i] === '#') {
      const m = /^#((?:[0-9a-fA-F]{2})+)/.exec(s.slice(this.i))
      if (!m) this.fail('expected hex pairs after "#"')
      this.i += m[0].length
      const hex = (m[1] as string).toLowerCase()
      push(derString(Buffer.from(hex, 'hex')) ?? `#${hex}`, false)
      this.skipSpaces()
      return { value, wild }
    }
    if (s[this.i] === '"') {
      this.i++
      for (;;) {
        const c = s[this.i]
        if (c === undefined) this.fail('unterminated quoted value')
        if (c === '"') break
        if (c === '\\') {
          push(this.escaped(), false)
          continue
        }
        push(c, c === '*' || c === '?')
        this.i++
      }
      this.i++
      this.skipSpaces()
      return { value, wild }
    }
    let trailing = 0 // unescaped spaces at the end, trimmed as RFC 4514 requires
    for (;;) {
      const c = s[this.i]
      if (c === undefined || c === ',' || c === ';' || c === '+') break
      if (c === '\\') {
        push(this.escaped(), false)
        trailing = 0
        continue
      }
      push(c, c === '*' || c === '?')
      trailing = isSpace(c) ? trailing + 1 : 0
      this.i++
    }
    if (trailing > 0) {
      value = value.slice(0, value.length - trailing)
      wild.length = value.length
    }
    return { value, wild }
  }

  name(): Rdn[] {
    const rdns: Rdn[] = []
    this.skipSpaces()
    if (this.i >= this.s.length) return rdns
    let rdn: DnTextAttribute[] = []
    for (;;) {
      const type = this.type()
      const { value, wild } = this.value()
      rdn.push({ type, value, wild })
      const sep = this.s[this.i]
      if (sep === undefined) break
      if (sep !== ',' && sep !== ';' && sep !== '+') this.fail(`unexpected "${sep}" after a quoted or #hex value`)
      this.i++
      if (sep !== '+') {
        rdns.push(rdn)
        rdn = []
      }
    }
    rdns.push(rdn)
    return rdns
  }
}

class DnSyntaxError extends Error {}

/**
 * Parses a distinguished name. `strict` (for patterns an operator writes) refuses attribute
 * keywords this parser does not know; otherwise they are kept upper-cased. Never throws.
 */
export function parseDn(s: string, strict = false): DnResult {
  if (typeof s !== 'string') return { ok: false, error: 'not a string' }
  try {
    return { ok: true, rdns: new Parser(s, strict).name() }
  } catch (e) {
    return { ok: false, error: e instanceof DnSyntaxError ? e.message : `cannot be parsed: ${String(e)}` }
  }
}
