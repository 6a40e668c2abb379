/**
 * Hostile first flights for the TLS port: ClientHellos truncated, lying about lengths, with
 * oversized or repeated SNI, bad extension lengths, random bytes, SSLv2 and plain HTTP. Each case
 * says whether the gateway's hello reader must refuse it before OpenSSL sees it (`refused`) or
 * whether it may reach the TLS library (a hello that still parses).
 */

/** One hostile first flight. */
export interface TlsCase {
  readonly kind: string
  readonly bytes: Buffer
  /** half-close after writing (a truncated flight would otherwise wait for the hello timeout) */
  readonly end: boolean
  /**
   * what the gateway may answer: `silent-or-alert` (refused by the hello reader: nothing, or one
   * alert), `tls` (handed to OpenSSL: any TLS records, then closed), `http-400` (plain HTTP)
   */
  readonly expect: 'silent-or-alert' | 'tls' | 'http-400'
}

const u8 = (n: number): Buffer => Buffer.from([n & 0xff])
const u16 = (n: number): Buffer => Buffer.from([(n >> 8) & 0xff, n & 0xff])
const u24 = (n: number): Buffer => Buffer.from([(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff])
const ext = (type: number, data: Buffer): Buffer => Buffer.concat([u16(type), u16(data.length), data])
/** A server_name extension with one host_name entry. */
export const sniExt = (name: Buffer): Buffer => ext(0, Buffer.concat([u16(name.length + 3), u8(0), u16(name.length), name]))

/** A ClientHello body (TLS 1.2 layout) around a raw extensions block. */
function helloBody(extensions: Buffer): Buffer {
  return Buffer.concat([u16(0x0303), Buffer.alloc(32, 7), u8(0), u16(4), u16(0xc02f), u16(0x1301), Buffer.from([1, 0]), extensions])
}
const extBlock = (exts: readonly Buffer[], lenDelta = 0): Buffer => {
  const all = Buffer.concat(exts)
  return Buffer.concat([u16(all.length + lenDelta), all])
}
/** A handshake message of `type` split into handshake records of at most `recordSize` bytes. */
export function records(body: Buffer, o: { recordSize?: number; type?: number; lenField?: number } = {}): Buffer {
  const msg = Buffer.concat([u8(o.type ?? 1), u24(o.lenField ?? body.length), body])
  const out: Buffer[] = []
  const size = o.recordSize ?? 16384
  for (let i = 0; i < msg.length; i += size) {
    const frag = msg.subarray(i, i + size)
    out.push(Buffer.concat([Buffer.from([0x16, 3, 1]), u16(frag.length), frag]))
  }
  return Buffer.concat(out)
}
const hello = (exts: readonly Buffer[], lenDelta = 0): Buffer => records(helloBody(extBlock(exts, lenDelta)))

/** Sets the record length field of the first record. */
const withRecordLen = (flight: Buffer, len: number): Buffer => {
  const b = Buffer.from(flight)
  b.writeUInt16BE(len & 0xffff, 3)
  return b
}

/** Every prefix of `flight` shorter than it, each followed by a FIN. */
export function truncations(flight: Buffer): TlsCase[] {
  const out: TlsCase[] = []
  for (let n = 1; n < flight.length; n++) out.push({ kind: 'truncated', bytes: flight.subarray(0, n), end: true, expect: 'silent-or-alert' })
  return out
}

/** Fixed hostile shapes around a real hello for `sni`. */
export function shapedCases(real: Buffer, sni: string): TlsCase[] {
  const name = Buffer.from(sni)
  const refused = (kind: string, bytes: Buffer, end = true): TlsCase => ({ kind, bytes, end, expect: 'silent-or-alert' })
  const realLen = real.readUInt16BE(3)
  const hsLen = real.readUIntBE(6, 3)
  const withHsLen = (n: number): Buffer => {
    const b = Buffer.from(real)
    b.writeUIntBE(n, 6, 3)
    return b
  }
  const manyNames = Buffer.concat(Array.from({ length: 1000 }, (_, i) => {
    const n = Buffer.from(`n${i}.${sni}`)
    return Buffer.concat([u8(0), u16(n.length), n])
  }))
  const bigName = Buffer.alloc(64 * 1024 - 16, 0x61)
  return [
    // record-length lies
    refused('record length over what is sent', withRecordLen(real, realLen + 100)),
    refused('record length 16385', withRecordLen(real, 16385)),
    refused('record length 65535', withRecordLen(real, 0xffff)),
    refused('record length 0', withRecordLen(real, 0)),
    refused('record shorter than its handshake', withRecordLen(real, 40)),
    refused('handshake length 2^24-1', withHsLen(0xffffff)),
    refused('handshake length 0', withHsLen(0)),
    refused('handshake length shorter than the hello', withHsLen(40)),
    refused('handshake length longer than the record, then garbage', Buffer.concat([withHsLen(hsLen + 50), Buffer.alloc(60, 0xee)])),
    refused('record version 3.9', Buffer.concat([Buffer.from([0x16, 3, 9]), real.subarray(3)])),
    refused('record version 2.0', Buffer.concat([Buffer.from([0x16, 2, 0]), real.subarray(3)])),
    refused('application data record first', Buffer.concat([Buffer.from([0x17]), real.subarray(1)])),
    refused('alert record first', Buffer.from([0x15, 3, 3, 0, 2, 2, 40])),
    refused('server hello type', Buffer.concat([real.subarray(0, 5), u8(2), real.subarray(6)])),
    // oversized and repeated SNI
    refused('64 KiB host name over several records', records(helloBody(extBlock([sniExt(bigName)])))),
    refused('64 KiB host name claimed in one record', Buffer.concat([Buffer.from([0x16, 3, 1]), u16(0xffff), Buffer.alloc(300, 0x61)])),
    refused('host name of 300 bytes', hello([sniExt(Buffer.alloc(300, 0x62))])),
    refused('1,000 host names in one server_name', hello([ext(0, Buffer.concat([u16(manyNames.length), manyNames]))])),
    refused('1,000 server_name extensions', hello(Array.from({ length: 1000 }, (_, i) => sniExt(Buffer.from(`d${i}.${sni}`))))),
    refused('two server_name extensions', hello([sniExt(name), sniExt(name)])),
    refused('host name with NUL', hello([sniExt(Buffer.concat([name, u8(0), Buffer.from('.evil')]))])),
    refused('host name with UTF-8', hello([sniExt(Buffer.from(`é.${sni}`))])),
    refused('empty host name', hello([sniExt(Buffer.alloc(0))])),
    // bad extension lengths
    refused('extensions block one byte long', hello([sniExt(name)], 1)),
    refused('extensions block one byte short', hello([sniExt(name)], -1)),
    refused('extension longer than the hello', hello([Buffer.concat([u16(0), u16(500), Buffer.alloc(10)])], 0)),
    refused('server_name list length mismatch', hello([ext(0, Buffer.concat([u16(name.length + 9), u8(0), u16(name.length), name]))])),
    refused('host name length mismatch', hello([ext(0, Buffer.concat([u16(name.length + 3), u8(0), u16(name.length + 4), name]))])),
    refused('server_name entry of type 1', hello([ext(0, Buffer.concat([u16(name.length + 3), u8(1), u16(name.length), name]))])),
    refused('empty ALPN name', hello([sniExt(name), ext(16, Buffer.concat([u16(3), u8(0), Buffer.from('h2')]))])),
    refused('ALPN name longer than its list', hello([sniExt(name), ext(16, Buffer.concat([u16(3), u8(9), Buffer.from('h2')]))])),
    refused('supported_versions of odd length', hello([sniExt(name), ext(43, Buffer.from([3, 3, 4, 3]))])),
    refused('truncated extension header', records(helloBody(Buffer.concat([u16(3), u16(0), u8(0)])))),
    // not TLS at all
    refused('SSLv2 hello', Buffer.from('802e0103010015000000100100800300800700c0060040020080040080000039000038000035', 'hex')),
    refused('SSLv2 hello, 3-byte header', Buffer.from('0080490103010030000000100000390000380000350000330000320000', 'hex')),
    refused('NUL bytes', Buffer.alloc(64, 0)),
    refused('TLS 1.3 record of zeros', Buffer.concat([Buffer.from([0x16, 3, 3, 0, 64]), Buffer.alloc(64)])),
    // plain HTTP on the TLS port: answered like nginx
    { kind: 'plain HTTP GET', bytes: Buffer.from(`GET / HTTP/1.1\r\nHost: ${sni}\r\n\r\n`), end: false, expect: 'http-400' },
    { kind: 'plain HTTP POST', bytes: Buffer.from(`POST /x HTTP/1.1\r\nHost: ${sni}\r\nContent-Length: 2\r\n\r\nhi`), end: false, expect: 'http-400' },
    { kind: 'HTTP/2 preface', bytes: Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), end: false, expect: 'http-400' },
    // a real hello followed by garbage: OpenSSL sees it and ends the handshake
    { kind: 'real hello then garbage', bytes: Buffer.concat([real, Buffer.alloc(200, 0x41)]), end: true, expect: 'tls' },
    { kind: 'real hello then a second hello', bytes: Buffer.concat([real, real]), end: true, expect: 'tls' },
  ]
}

/** Seeded random cases: random bytes after a valid record header, and byte flips in a real hello. */
export function randomCases(real: Buffer, rand: () => number, count: number): TlsCase[] {
  const int = (n: number): number => Math.floor(rand() * n)
  const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(256)))
  const out: TlsCase[] = []
  for (let i = 0; i < count; i++) {
    switch (i % 4) {
      case 0: {
        // a valid record header, then random bytes of the announced length
        const n = 1 + int(600)
        out.push({ kind: 'random after a record header', bytes: Buffer.concat([Buffer.from([0x16, 3, 1]), u16(n), bytes(n)]), end: true, expect: 'silent-or-alert' })
        break
      }
      case 1: {
        // a valid record and handshake header, then a random body of the announced length
        const n = 40 + int(600)
        out.push({ kind: 'random hello body', bytes: Buffer.concat([Buffer.from([0x16, 3, 1]), u16(n + 4), u8(1), u24(n), bytes(n)]), end: true, expect: 'silent-or-alert' })
        break
      }
      case 2: {
        // one to four bytes of a real hello changed: the reader may refuse it, or OpenSSL may
        const b = Buffer.from(real)
        for (let k = 1 + int(4); k > 0; k--) b[int(b.length)] = int(256)
        out.push({ kind: 'real hello with bytes changed', bytes: b, end: true, expect: 'tls' })
        break
      }
      default: {
        // random bytes, any first byte
        out.push({ kind: 'random bytes', bytes: bytes(1 + int(300)), end: true, expect: 'tls' })
      }
    }
  }
  return out
}
