import t from 'tap'
import { readFileSync } from 'node:fs'
import { MAX_HELLO_BYTES, parseClientHello, type ClientHelloResult } from '../../../core/tls/client-hello.js'
import { seeded } from '../../lib/random.js'

const fixture = (name: string): Buffer => readFileSync(new URL(`../../fixtures/tls/${name}.bin`, import.meta.url))


const u16 = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff])
const u24 = (n: number): Buffer => Buffer.from([n >> 16, (n >> 8) & 0xff, n & 0xff])
const ext = (type: number, data: Buffer): Buffer => Buffer.concat([u16(type), u16(data.length), data])
const sniExt = (name: Buffer): Buffer => ext(0, Buffer.concat([u16(name.length + 3), Buffer.from([0]), u16(name.length), name]))
const alpnExt = (names: string[]): Buffer => {
  const list = Buffer.concat(names.map((n) => Buffer.concat([Buffer.from([n.length]), Buffer.from(n)])))
  return ext(16, Buffer.concat([u16(list.length), list]))
}

/** A ClientHello body with the given extensions block (raw, so tests can corrupt it). */
function helloBody(extensions: Buffer | undefined): Buffer {
  const fixed = Buffer.concat([
    u16(0x0303),
    Buffer.alloc(32, 7), // random
    Buffer.from([0]), // session id
    u16(2),
    u16(0x1301), // one cipher suite
    Buffer.from([1, 0]), // compression: null
  ])
  return extensions === undefined ? fixed : Buffer.concat([fixed, extensions])
}
const extBlock = (exts: Buffer[]): Buffer => {
  const all = Buffer.concat(exts)
  return Buffer.concat([u16(all.length), all])
}
/** Handshake message (type 1) split into TLS records of at most `recordSize` bytes. */
function records(body: Buffer, recordSize = 16384, msgType = 1): Buffer {
  const msg = Buffer.concat([Buffer.from([msgType]), u24(body.length), body])
  const out: Buffer[] = []
  for (let i = 0; i < msg.length; i += recordSize) {
    const frag = msg.subarray(i, i + recordSize)
    out.push(Buffer.concat([Buffer.from([0x16, 3, 1]), u16(frag.length), frag]))
  }
  return Buffer.concat(out)
}
const hello = (exts: Buffer[], recordSize?: number): Buffer => records(helloBody(extBlock(exts)), recordSize)

/** Re-frames a captured first flight into records of the given sizes (cycled). */
function refragment(flight: Buffer, sizes: number[]): Buffer {
  const msg: Buffer[] = []
  for (let off = 0; off < flight.length; ) {
    const len = flight.readUInt16BE(off + 3)
    msg.push(flight.subarray(off + 5, off + 5 + len))
    off += 5 + len
  }
  const all = Buffer.concat(msg)
  const out: Buffer[] = []
  for (let i = 0, k = 0; i < all.length; k++) {
    const frag = all.subarray(i, i + sizes[k % sizes.length]!)
    out.push(Buffer.concat([Buffer.from([0x16, 3, 1]), u16(frag.length), frag]))
    i += frag.length
  }
  return Buffer.concat(out)
}

const ok = (r: ClientHelloResult) => {
  if (r.state !== 'ok') throw new Error(`expected ok, got ${JSON.stringify(r)}`)
  return r
}

t.test('client hello: captured hellos from openssl, curl and node → their SNI and ALPN', async (t) => {
  const cases: [string, string | undefined, string | undefined, string[] | undefined, boolean][] = [
    // fixture, serverName as sent, normalised sni, alpn, offers TLS 1.3
    ['openssl-sni-alpn', 'openssl.example.com', 'openssl.example.com', ['h2', 'http/1.1'], true],
    ['openssl-tls12-upper-dot', 'TLS12.Example.COM.', 'tls12.example.com', undefined, false],
    ['openssl-no-sni', undefined, undefined, undefined, true],
    ['curl-h2', 'curl.example.com', 'curl.example.com', ['h2', 'http/1.1'], true],
    ['curl-http11', 'curl.example.com', 'curl.example.com', ['http/1.1'], true],
    ['node-sni-alpn', 'node.example.com', 'node.example.com', ['h2', 'http/1.1'], true],
    ['node-no-sni', undefined, undefined, undefined, true],
  ]
  for (const [name, serverName, sni, alpn, tls13] of cases) {
    const bin = fixture(name)
    const r = ok(parseClientHello(bin))
    t.equal(r.serverName, serverName, `${name}: serverName`)
    t.equal(r.sni, sni, `${name}: sni`)
    t.same(r.alpn, alpn, `${name}: alpn`)
    t.equal(r.legacyVersion, 0x0303, `${name}: legacy version`)
    t.equal(r.supportedVersions?.includes(0x0304) ?? false, tls13, `${name}: offers TLS 1.3`)
    t.equal(r.helloBytes, bin.length, `${name}: helloBytes covers the flight`)
  }
})

t.test('client hello: a hello of 2,431 bytes with 120 ALPN names → every name, in order', async (t) => {
  const r = ok(parseClientHello(fixture('node-large')))
  t.equal(r.sni, 'large.example.com')
  t.equal(r.alpn?.length, 120)
  t.equal(r.alpn?.[119], 'proto-119-padding')
})

t.test('client hello: every prefix of a captured hello → need-more, the whole → ok', async (t) => {
  for (const name of ['openssl-sni-alpn', 'curl-h2', 'node-large']) {
    const bin = fixture(name)
    const states = new Set<string>()
    for (let n = 0; n < bin.length; n++) states.add(parseClientHello(bin.subarray(0, n)).state)
    t.same([...states], ['need-more'], `${name}: all ${bin.length} prefixes wait for more`)
    t.equal(parseClientHello(bin).state, 'ok', `${name}: complete`)
  }
})

t.test('client hello: split over several records → same result, helloBytes counts every record', async (t) => {
  const bin = fixture('node-large')
  const want = ok(parseClientHello(bin))
  for (const sizes of [[1], [3, 1], [100], [1000, 7], [16384]]) {
    const flight = refragment(bin, sizes)
    const r = ok(parseClientHello(flight))
    t.equal(r.sni, want.sni, `records of ${sizes.join(',')}: sni`)
    t.same(r.alpn, want.alpn, `records of ${sizes.join(',')}: alpn`)
    t.equal(r.helloBytes, flight.length, `records of ${sizes.join(',')}: helloBytes`)
    t.equal(parseClientHello(flight.subarray(0, flight.length - 1)).state, 'need-more', `records of ${sizes.join(',')}: one byte short`)
  }
})

t.test('client hello: bytes after the hello (next records) → ok, helloBytes stops at its last record', async (t) => {
  const bin = fixture('openssl-sni-alpn')
  const after = Buffer.concat([bin, Buffer.from([0x14, 3, 3, 0, 1, 1]), Buffer.from('junk')])
  t.equal(ok(parseClientHello(after)).helloBytes, bin.length)
})

t.test('client hello: not TLS at all → malformed with a reason, from the first byte', async (t) => {
  const cases: [string, Buffer, string][] = [
    ['GET request', Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\n'), 'plain http'],
    ['one byte of a request', Buffer.from('P'), 'plain http'],
    ['h2c preface', Buffer.from('PRI * HTTP/2.0\r\n'), 'plain http'],
    ['lower-case method', Buffer.from('get / HTTP/1.1\r\n'), 'not tls'],
    ['SSLv2 hello', Buffer.from('80 2e 01 03 01 00 15 00 00 00 10'.replaceAll(' ', ''), 'hex'), 'not tls'],
    ['NUL', Buffer.from([0]), 'not tls'],
    ['SSH banner', Buffer.from('SSH-2.0-OpenSSH_9.2\r\n'), 'not tls'],
    ['alert record first', Buffer.from([0x15, 3, 3, 0, 2, 2, 40]), 'not tls'],
  ]
  for (const [what, buf, reason] of cases) {
    const r = parseClientHello(buf)
    t.equal(r.state, 'malformed', `${what}: malformed`)
    if (r.state === 'malformed') t.equal(r.reason, reason, `${what}: ${reason}`)
  }
})

t.test('client hello: broken records and handshake headers → malformed as soon as visible', async (t) => {
  const good = hello([sniExt(Buffer.from('a.example'))])
  const withByte = (i: number, v: number): Buffer => {
    const b = Buffer.from(good)
    b[i] = v
    return b
  }
  const cases: [string, Buffer, string][] = [
    ['record version 2.0', Buffer.from([0x16, 2]), 'bad record'],
    ['record version 3.9', Buffer.from([0x16, 3, 9]), 'bad record'],
    ['empty record', Buffer.from([0x16, 3, 1, 0, 0]), 'bad record'],
    ['record of 16,385 bytes', Buffer.from([0x16, 3, 1, 0x40, 0x01]), 'bad record'],
    ['server hello', Buffer.from([0x16, 3, 1, 0, 4, 2]), 'not client hello'],
    ['hello claiming 16 KiB + 1', Buffer.concat([Buffer.from([0x16, 3, 1, 0, 4, 1]), u24(MAX_HELLO_BYTES - 3)]), 'too large'],
    ['legacy version 2.0', withByte(9, 2), 'bad client hello'],
    ['session id of 33 bytes', withByte(9 + 34, 33), 'bad client hello'],
    ['alert between fragments', Buffer.concat([records(helloBody(undefined), 10).subarray(0, 15), Buffer.from([0x15, 3, 3, 0, 2, 2, 40])]), 'bad record'],
  ]
  for (const [what, buf, reason] of cases) {
    const r = parseClientHello(buf)
    t.equal(r.state, 'malformed', `${what}: malformed`)
    if (r.state === 'malformed') t.equal(r.reason, reason, `${what}: ${reason}`)
  }
  t.equal(ok(parseClientHello(hello([], 16384))).sni, undefined, 'a hello with an empty extensions block is fine')
  t.equal(ok(parseClientHello(records(helloBody(undefined)))).alpn, undefined, 'a hello without extensions is fine')
})

t.test('client hello: a hello of exactly 16 KiB → ok; one byte more → too large', async (t) => {
  const pad = (n: number): Buffer => ext(21, Buffer.alloc(n))
  const base = hello([sniExt(Buffer.from('big.example')), pad(0)])
  const room = MAX_HELLO_BYTES - (base.length - 5) // the handshake message bytes still free
  const exact = hello([sniExt(Buffer.from('big.example')), pad(room)])
  t.equal(ok(parseClientHello(exact)).sni, 'big.example')
  const over = parseClientHello(hello([sniExt(Buffer.from('big.example')), pad(room + 1)]))
  t.equal(over.state === 'malformed' && over.reason, 'too large')
})

t.test('client hello: bad extension framing → malformed, never a partial answer', async (t) => {
  const sni = sniExt(Buffer.from('x.example'))
  const block = extBlock([sni])
  const cases: [string, Buffer, string][] = [
    ['extensions length one too long', records(helloBody(Buffer.concat([u16(block.length - 1), block.subarray(2)]))), 'bad extension'],
    ['extensions length one too short', records(helloBody(Buffer.concat([u16(block.length - 3), block.subarray(2)]))), 'bad extension'],
    ['extension longer than the hello', records(helloBody(Buffer.concat([u16(4), u16(0), u16(9)]))), 'bad extension'],
    ['truncated extension header', records(helloBody(Buffer.concat([u16(3), u16(0), Buffer.from([0])]))), 'bad extension'],
    ['two server_name extensions', hello([sni, sni]), 'bad extension'],
    ['server_name list length off', hello([ext(0, Buffer.concat([u16(99), Buffer.from([0]), u16(1), Buffer.from('a')]))]), 'bad server name'],
    ['server_name of type 1', hello([ext(0, Buffer.concat([u16(4), Buffer.from([1]), u16(1), Buffer.from('a')]))]), 'bad server name'],
    ['two host names', hello([ext(0, Buffer.concat([u16(8), Buffer.from([0]), u16(1), Buffer.from('a'), Buffer.from([0]), u16(1), Buffer.from('b')]))]), 'bad server name'],
    ['empty host name', hello([sniExt(Buffer.alloc(0))]), 'bad server name'],
    ['host name of 256 bytes', hello([sniExt(Buffer.alloc(256, 'a'))]), 'bad server name'],
    ['NUL in host name', hello([sniExt(Buffer.from('a\0.example'))]), 'bad server name'],
    ['UTF-8 host name', hello([sniExt(Buffer.from('é.example'))]), 'bad server name'],
    ['space in host name', hello([sniExt(Buffer.from('a b'))]), 'bad server name'],
    ['empty ALPN list', hello([ext(16, u16(0))]), 'bad alpn'],
    ['empty ALPN name', hello([ext(16, Buffer.concat([u16(1), Buffer.from([0])]))]), 'bad alpn'],
    ['ALPN name past the list', hello([ext(16, Buffer.concat([u16(2), Buffer.from([5, 0x68])]))]), 'bad alpn'],
    ['odd supported_versions', hello([ext(43, Buffer.from([3, 3, 4, 3]))]), 'bad supported versions'],
  ]
  for (const [what, buf, reason] of cases) {
    const r = parseClientHello(buf)
    t.equal(r.state, 'malformed', `${what}: malformed`)
    if (r.state === 'malformed') t.equal(r.reason, reason, `${what}: ${reason}`)
  }
})

t.test('client hello: a host name of 255 bytes → ok; case and one trailing dot normalised', async (t) => {
  const long = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(63)}`
  t.equal(long.length, 255)
  t.equal(ok(parseClientHello(hello([sniExt(Buffer.from(long))]))).sni, long)
  const r = ok(parseClientHello(hello([sniExt(Buffer.from('WWW.Example.COM.')), alpnExt(['http/1.1'])])))
  t.equal(r.serverName, 'WWW.Example.COM.')
  t.equal(r.sni, 'www.example.com')
  t.same(r.alpn, ['http/1.1'])
  t.equal(ok(parseClientHello(hello([sniExt(Buffer.from('a.com..'))]))).sni, 'a.com.', 'only one trailing dot goes')
})

t.test('client hello: 20,000 fuzzed inputs (fixed seed) → one of the three states, never a throw', async (t) => {
  const rand = seeded(0x5eed)
  const int = (n: number) => Math.floor(rand() * n)
  const seeds = ['openssl-sni-alpn', 'openssl-tls12-upper-dot', 'curl-h2', 'node-sni-alpn', 'node-large'].map(fixture)
  const counts = { 'need-more': 0, ok: 0, malformed: 0 }
  let bad = 0
  for (let i = 0; i < 20_000; i++) {
    let b = Buffer.from(seeds[int(seeds.length)]!)
    const mode = int(5)
    if (mode === 0) b = b.subarray(0, int(b.length))
    else if (mode === 1) for (let k = 0, n = 1 + int(4); k < n; k++) b[int(b.length)] = int(256)
    else if (mode === 2) {
      const at = int(b.length)
      b = Buffer.concat([b.subarray(0, at), Buffer.from([int(256)]), b.subarray(at)])
    } else if (mode === 3) {
      const at = 5 + int(b.length - 5)
      b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + int(8))])
    } else b = Buffer.from(Array.from({ length: int(64) }, () => int(256)))
    let r: ClientHelloResult | undefined
    try {
      r = parseClientHello(b)
    } catch {
      bad++
      continue
    }
    counts[r.state]++
    if (r.state === 'ok' && (r.helloBytes > b.length || r.helloBytes < 9)) bad++
    if (r.state === 'malformed' && r.detail.startsWith('internal')) bad++
  }
  t.equal(bad, 0, 'no throw, no internal error, helloBytes within the input')
  t.ok(counts['need-more'] > 0 && counts.ok > 0 && counts.malformed > 0, `all three states seen: ${JSON.stringify(counts)}`)
})

t.test('client hello: the offered ticket → its 16-byte key name in hex (TLS 1.2 ticket, first TLS 1.3 PSK identity)', async (t) => {
  const name = Buffer.from('00112233445566778899aabbccddeeff', 'hex')
  const ticket = Buffer.concat([name, Buffer.alloc(80, 9)])
  const identity = (id: Buffer): Buffer => Buffer.concat([u16(id.length), id, Buffer.alloc(4)])
  const psk = (ids: Buffer[]): Buffer => {
    const list = Buffer.concat(ids.map(identity))
    const binders = Buffer.concat([u16(33), Buffer.from([32]), Buffer.alloc(32)])
    return ext(41, Buffer.concat([u16(list.length), list, binders]))
  }
  const other = Buffer.concat([Buffer.alloc(16, 0xee), Buffer.alloc(40)])
  const cases: [string, Buffer[], string | undefined][] = [
    ['no ticket extension', [sniExt(Buffer.from('a.test'))], undefined],
    ['an empty session_ticket (asking for one)', [ext(35, Buffer.alloc(0))], undefined],
    ['a TLS 1.2 ticket', [ext(35, ticket)], name.toString('hex')],
    ['a ticket shorter than a key name', [ext(35, Buffer.alloc(15, 1))], undefined],
    ['one TLS 1.3 identity', [psk([ticket])], name.toString('hex')],
    ['two identities: the first one counts', [psk([ticket, other])], name.toString('hex')],
    ['a short identity', [psk([Buffer.alloc(8, 1)])], undefined],
    ['a truncated pre_shared_key', [ext(41, Buffer.from([0, 90, 0, 80, 1, 2]))], undefined],
  ]
  for (const [why, exts, want] of cases) t.equal(ok(parseClientHello(hello(exts))).ticketKeyName, want, why)
})
