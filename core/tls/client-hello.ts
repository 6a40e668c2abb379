import { normalizeSni } from '../net/hostname.js'

/** The most ClientHello bytes (handshake header included) the reader accepts (DESIGN.md §2.7). */
export const MAX_HELLO_BYTES = 16 * 1024

/** Why the first bytes of a connection were refused; `plain http` lets the listener answer like nginx. */
export type MalformedReason =
  | 'not tls'
  | 'plain http'
  | 'bad record'
  | 'not client hello'
  | 'too large'
  | 'bad client hello'
  | 'bad extension'
  | 'bad server name'
  | 'bad alpn'
  | 'bad supported versions'

/** What the gateway needs from a complete ClientHello. */
export interface ClientHello {
  /** The server_name exactly as sent (nginx's `$ssl_server_name`); absent when the client sent none. */
  readonly serverName?: string
  /** `serverName` normalised (lower case, one trailing dot removed): the key for the SNI index. */
  readonly sni?: string
  /** The ALPN protocol names offered, in the client's order; absent without the extension. */
  readonly alpn?: readonly string[]
  /** `legacy_version` of the hello (0x0303 for TLS 1.2 and 1.3 clients). */
  readonly legacyVersion: number
  /** The supported_versions extension (e.g. 0x0304 for TLS 1.3), GREASE values included. */
  readonly supportedVersions?: readonly number[]
  /**
   * The key name (first 16 bytes, hex) of the ticket the client offers to resume with: the
   * session_ticket extension (TLS 1.2) or the first pre_shared_key identity (TLS 1.3).
   * Absent without one; the TLS library still judges the ticket itself.
   */
  readonly ticketKeyName?: string
}

/** The reader's verdict on the bytes received so far; it never throws. */
export type ClientHelloResult =
  | { readonly state: 'need-more' }
  | ({ readonly state: 'ok'; readonly helloBytes: number } & ClientHello)
  | { readonly state: 'malformed'; readonly reason: MalformedReason; readonly detail: string }

const NEED_MORE: ClientHelloResult = Object.freeze({ state: 'need-more' })
const RECORD_HANDSHAKE = 0x16
const HANDSHAKE_CLIENT_HELLO = 0x01
const RECORD_HEADER = 5
const MAX_RECORD = 16384 // TLSPlaintext.length limit, RFC 8446 §5.1
const MAX_HOST_NAME = 255 // OpenSSL's TLSEXT_MAXLEN_host_name

const EXT_SERVER_NAME = 0
const EXT_ALPN = 16
const EXT_SUPPORTED_VERSIONS = 43
const EXT_SESSION_TICKET = 35
const EXT_PRE_SHARED_KEY = 41
const TICKET_KEY_NAME = 16

const malformed = (reason: MalformedReason, detail: string): ClientHelloResult => ({ state: 'malformed', reason, detail })

/**
 * Parses the first bytes of a TLS connection. Call it again with the whole buffer each time more
 * bytes arrive: `need-more` until the ClientHello is complete, then `ok` (with `helloBytes`, the
 * bytes of the records that carried it) or `malformed`. Pure and total: any input gives one of the
 * three states. An SSLv2-format hello is refused as `not tls` (it cannot carry an SNI).
 */
export function parseClientHello(buf: Uint8Array): ClientHelloResult {
  try {
    return parse(buf)
  } catch (err) {
    // Unreachable by construction (every read is bounds-checked); the reader must never throw.
    return malformed('bad client hello', `internal: ${(err as Error).message}`)
  }
}

function parse(buf: Uint8Array): ClientHelloResult {
  if (buf.length === 0) return NEED_MORE
  if (buf[0] !== RECORD_HANDSHAKE) {
    return looksLikeHttp(buf) ? malformed('plain http', 'an HTTP request on the TLS port') : malformed('not tls', `first byte 0x${hex2(buf[0] ?? 0)}`)
  }
  // Reassemble the handshake message from as many records as it spans.
  let off = 0
  let body: Uint8Array | undefined // the ClientHello body once its length is known
  let have = 0
  let msgLen = -1
  const pending: Uint8Array[] = []
  while (true) {
    if (buf.length - off < RECORD_HEADER) return checkPartialHeader(buf, off)
    const type = buf[off]!
    const major = buf[off + 1]!
    const minor = buf[off + 2]!
    const len = (buf[off + 3]! << 8) | buf[off + 4]!
    if (type !== RECORD_HANDSHAKE) return malformed('bad record', `record type ${type} before the ClientHello was complete`)
    if (major !== 3 || minor > 4) return malformed('bad record', `record version ${major}.${minor}`)
    if (len === 0) return malformed('bad record', 'empty handshake record')
    if (len > MAX_RECORD) return malformed('bad record', `record length ${len} over ${MAX_RECORD}`)
    const start = off + RECORD_HEADER
    const avail = Math.min(len, buf.length - start)
    const fragment = buf.subarray(start, start + avail)
    if (msgLen < 0 && pending.length === 0 && avail === len && len >= 4 && fragment[0] === HANDSHAKE_CLIENT_HELLO) {
      // Common case: the whole hello in the first record; read it in place.
      const n = (fragment[1]! << 16) | (fragment[2]! << 8) | fragment[3]!
      if (n + 4 > MAX_HELLO_BYTES) return malformed('too large', `ClientHello of ${n + 4} bytes over ${MAX_HELLO_BYTES}`)
      if (n + 4 <= len) return readHello(fragment.subarray(4, 4 + n), start + len)
    }
    if (msgLen < 0) {
      pending.push(fragment)
      const head = concat(pending, 4)
      if (head.length >= 1 && head[0] !== HANDSHAKE_CLIENT_HELLO) return malformed('not client hello', `handshake type ${head[0]}`)
      if (head.length >= 4) {
        msgLen = (head[1]! << 16) | (head[2]! << 8) | head[3]!
        if (msgLen + 4 > MAX_HELLO_BYTES) return malformed('too large', `ClientHello of ${msgLen + 4} bytes over ${MAX_HELLO_BYTES}`)
        body = new Uint8Array(msgLen + 4)
        for (const p of pending) {
          const n = Math.min(p.length, body.length - have)
          body.set(p.subarray(0, n), have)
          have += n
        }
      }
    } else if (body) {
      const n = Math.min(fragment.length, body.length - have)
      body.set(fragment.subarray(0, n), have)
      have += n
    }
    if (body && have >= body.length) {
      // The record holding the last hello byte must itself have arrived whole before we say `ok`,
      // so that `helloBytes` covers complete records only.
      if (avail < len) return NEED_MORE
      return readHello(body.subarray(4), start + len)
    }
    if (avail < len) return NEED_MORE
    off = start + len
  }
}

/** A record header cut short: validate the bytes present so garbage is refused early. */
function checkPartialHeader(buf: Uint8Array, off: number): ClientHelloResult {
  const type = buf[off]
  if (type !== undefined && type !== RECORD_HANDSHAKE) return malformed('bad record', `record type ${type} before the ClientHello was complete`)
  const major = buf[off + 1]
  if (major !== undefined && major !== 3) return malformed('bad record', `record version major ${major}`)
  const minor = buf[off + 2]
  if (minor !== undefined && minor > 4) return malformed('bad record', `record version 3.${minor}`)
  return NEED_MORE
}

function concat(parts: readonly Uint8Array[], max: number): Uint8Array {
  const out: number[] = []
  for (const p of parts) for (let i = 0; i < p.length && out.length < max; i++) out.push(p[i]!)
  return Uint8Array.from(out)
}

/** A bounds-checked cursor over `[pos, end)` of a buffer; sub-readers share the buffer (no copies). */
class Reader {
  constructor(
    readonly b: Uint8Array,
    public pos: number,
    readonly end: number,
  ) {}
  left(): number {
    return this.end - this.pos
  }
  u8(): number | undefined {
    if (this.left() < 1) return undefined
    return this.b[this.pos++]
  }
  u16(): number | undefined {
    if (this.left() < 2) return undefined
    const v = (this.b[this.pos]! << 8) | this.b[this.pos + 1]!
    this.pos += 2
    return v
  }
  /** Takes `n` bytes as a sub-reader, or undefined when fewer remain. */
  take(n: number): Reader | undefined {
    if (n > this.left()) return undefined
    const r = new Reader(this.b, this.pos, this.pos + n)
    this.pos += n
    return r
  }
  skip(n: number): boolean {
    if (n > this.left()) return false
    this.pos += n
    return true
  }
  /** The remaining bytes as a string of the same code units (names here are ASCII). */
  text(): string {
    let s = ''
    for (let i = this.pos; i < this.end; i++) s += String.fromCharCode(this.b[i]!)
    return s
  }
  /** The next `n` bytes in lower-case hex (the caller checked they are there). */
  hex(n: number): string {
    let s = ''
    for (let i = this.pos; i < this.pos + n; i++) s += hex2(this.b[i]!)
    return s
  }
  /** True when every remaining byte is printable ASCII without space (RFC 6066 host names). */
  isPrintable(): boolean {
    for (let i = this.pos; i < this.end; i++) {
      const c = this.b[i]!
      if (c <= 0x20 || c >= 0x7f) return false
    }
    return true
  }
}

interface Parsed {
  serverName?: string
  alpn?: string[]
  supportedVersions?: number[]
  ticketKeyName?: string
}

function readHello(body: Uint8Array, helloBytes: number): ClientHelloResult {
  const r = new Reader(body, 0, body.length)
  const legacyVersion = r.u16()
  if (legacyVersion === undefined || legacyVersion >> 8 !== 3) return malformed('bad client hello', 'bad legacy_version')
  if (!r.skip(32)) return malformed('bad client hello', 'truncated random')
  const sidLen = r.u8()
  if (sidLen === undefined || sidLen > 32 || !r.skip(sidLen)) return malformed('bad client hello', 'bad session id')
  const csLen = r.u16()
  if (csLen === undefined || csLen < 2 || csLen % 2 !== 0 || !r.skip(csLen)) return malformed('bad client hello', 'bad cipher suites')
  const compLen = r.u8()
  if (compLen === undefined || compLen < 1 || !r.skip(compLen)) return malformed('bad client hello', 'bad compression methods')
  const parsed: Parsed = {}
  if (r.left() > 0) {
    const extLen = r.u16()
    if (extLen === undefined || extLen !== r.left()) return malformed('bad extension', 'extensions length does not match the hello')
    const seen = new Set<number>()
    while (r.left() > 0) {
      const type = r.u16()
      const len = r.u16()
      if (type === undefined || len === undefined) return malformed('bad extension', 'truncated extension header')
      const data = r.take(len)
      if (!data) return malformed('bad extension', `extension ${type} longer than the hello`)
      if (seen.has(type)) return malformed('bad extension', `extension ${type} repeated`)
      seen.add(type)
      const bad = readExtension(type, data, parsed)
      if (bad) return bad
    }
  }
  const { serverName, alpn, supportedVersions, ticketKeyName } = parsed
  return {
    state: 'ok',
    helloBytes,
    legacyVersion,
    ...(serverName !== undefined ? { serverName, sni: normalizeSni(serverName) } : {}),
    ...(alpn ? { alpn } : {}),
    ...(supportedVersions ? { supportedVersions } : {}),
    ...(ticketKeyName !== undefined ? { ticketKeyName } : {}),
  }
}

function readExtension(type: number, data: Reader, out: Parsed): ClientHelloResult | undefined {
  switch (type) {
    case EXT_SERVER_NAME: {
      // Like OpenSSL: exactly one entry, of type host_name, filling the list.
      const listLen = data.u16()
      if (listLen === undefined || listLen !== data.left()) return malformed('bad server name', 'server_name list length mismatch')
      const nameType = data.u8()
      const nameLen = data.u16()
      if (nameType !== 0) return malformed('bad server name', 'server_name entry is not a host_name')
      if (nameLen === undefined || nameLen !== data.left()) return malformed('bad server name', 'server_name must hold exactly one host name')
      if (nameLen === 0) return malformed('bad server name', 'empty host name')
      if (nameLen > MAX_HOST_NAME) return malformed('bad server name', `host name of ${nameLen} bytes over ${MAX_HOST_NAME}`)
      // RFC 6066: an ASCII host name. Anything else (NUL, controls, UTF-8) is refused, as it can
      // name no ssl object and would only reach logs.
      if (!data.isPrintable()) return malformed('bad server name', 'host name holds a byte outside printable ASCII')
      out.serverName = data.text()
      return undefined
    }
    case EXT_ALPN: {
      const listLen = data.u16()
      if (listLen === undefined || listLen !== data.left() || listLen < 2) return malformed('bad alpn', 'ALPN list length mismatch')
      const names: string[] = []
      while (data.left() > 0) {
        const n = data.u8()
        if (n === undefined || n === 0) return malformed('bad alpn', 'empty ALPN protocol name')
        const p = data.take(n)
        if (!p) return malformed('bad alpn', 'ALPN protocol name longer than the list')
        names.push(p.text())
      }
      out.alpn = names
      return undefined
    }
    case EXT_SUPPORTED_VERSIONS: {
      const len = data.u8()
      if (len === undefined || len !== data.left() || len < 2 || len % 2 !== 0) return malformed('bad supported versions', 'supported_versions length mismatch')
      const versions: number[] = []
      while (data.left() > 0) versions.push(data.u16()!)
      out.supportedVersions = versions
      return undefined
    }
    case EXT_SESSION_TICKET: {
      // a TLS 1.2 ticket: opaque bytes filling the extension (empty: the client asks for one)
      if (data.left() >= TICKET_KEY_NAME) out.ticketKeyName = data.hex(TICKET_KEY_NAME)
      return undefined
    }
    case EXT_PRE_SHARED_KEY: {
      // identities<7..2^16-1> of { identity<1..2^16-1>, obfuscated_ticket_age }; the binders
      // follow. Only the first identity's key name is read; OpenSSL checks the rest.
      const listLen = data.u16()
      const idLen = data.u16()
      if (listLen !== undefined && idLen !== undefined && idLen >= TICKET_KEY_NAME && idLen + 6 <= listLen && data.left() >= TICKET_KEY_NAME)
        out.ticketKeyName = data.hex(TICKET_KEY_NAME)
      return undefined
    }
    default:
      return undefined
  }
}

/** The start of an HTTP/1 request line: an upper-case method token, then a space (or not yet). */
function looksLikeHttp(buf: Uint8Array): boolean {
  const n = Math.min(buf.length, 8)
  for (let i = 0; i < n; i++) {
    const b = buf[i]!
    if (b === 0x20) return i >= 3
    if (b < 0x41 || b > 0x5a) return false
  }
  return true
}

const hex2 = (b: number): string => b.toString(16).padStart(2, '0')
