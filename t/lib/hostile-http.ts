/**
 * Hostile HTTP/1.1 requests for the data plane: smuggling shapes, bad chunked bodies, header
 * floods, request-line garbage and absolute-form targets with odd hosts. A route matching every
 * path sends any request the gateway accepts to the upstream, so none of these may reach it.
 */

/** One hostile request, sent as is on a fresh connection. */
export interface HttpCase {
  readonly kind: string
  readonly text: Buffer
  /** half-close after writing: the request is incomplete, so the server would wait for more */
  readonly end: boolean
}

const c = (kind: string, text: string, end = false): HttpCase => ({ kind, text: Buffer.from(text, 'latin1'), end })
/** A request that would be smuggled behind a refused one if the server kept reading. */
const SMUGGLED = 'GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n'

/** The fixed hostile requests for `host` (the Host every valid request sends). */
export function fixedHttpCases(host: string): HttpCase[] {
  const H = `Host: ${host}\r\n`
  const post = (headers: string, body: string): string => `POST /fuzz HTTP/1.1\r\n${H}${headers}\r\n${body}`
  return [
    // request smuggling shapes
    c('CL then TE', post('Content-Length: 4\r\nTransfer-Encoding: chunked\r\n', `0\r\n\r\n${SMUGGLED}`)),
    c('TE then CL', post('Transfer-Encoding: chunked\r\nContent-Length: 4\r\n', `0\r\n\r\n${SMUGGLED}`)),
    c('two different Content-Length', post('Content-Length: 4\r\nContent-Length: 40\r\n', `abcd${SMUGGLED}`)),
    c('two equal Content-Length', post('Content-Length: 4\r\nContent-Length: 4\r\n', 'abcd')),
    c('Content-Length list', post('Content-Length: 4, 4\r\n', 'abcd')),
    c('negative Content-Length', post('Content-Length: -1\r\n', 'abcd')),
    c('Content-Length with a plus sign', post('Content-Length: +4\r\n', 'abcd')),
    c('Content-Length overflow', post('Content-Length: 99999999999999999999999\r\n', 'abcd')),
    c('Transfer-Encoding: chunked, identity', post('Transfer-Encoding: chunked, identity\r\n', `0\r\n\r\n${SMUGGLED}`)),
    c('Transfer-Encoding: identity', post('Transfer-Encoding: identity\r\n', `abcd${SMUGGLED}`)),
    c('Transfer-Encoding: xchunked', post('Transfer-Encoding: xchunked\r\n', `0\r\n\r\n${SMUGGLED}`)),
    c('Transfer-Encoding: gzip', post('Transfer-Encoding: gzip\r\n', `abcd${SMUGGLED}`)),
    c('Transfer-Encoding twice', post('Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n', `0\r\n\r\n${SMUGGLED}`)),
    c('space before the colon', post('Transfer-Encoding : chunked\r\n', `0\r\n\r\n${SMUGGLED}`)),
    c('obs-fold in a header', `GET /fuzz HTTP/1.1\r\n${H}X-Folded: a\r\n b\r\n\r\n`),
    c('obs-fold in Transfer-Encoding', post('Transfer-Encoding:\r\n chunked\r\n', `0\r\n\r\n${SMUGGLED}`)),
    c('bare LF line ends', `GET /fuzz HTTP/1.1\nHost: ${host}\n\n`),
    c('bare LF after a header', `GET /fuzz HTTP/1.1\r\nHost: ${host}\nX-A: b\r\n\r\n`),
    c('bare CR in a header', `GET /fuzz HTTP/1.1\r\n${H}X-A: a\rb\r\n\r\n`),
    c('NUL in a header value', `GET /fuzz HTTP/1.1\r\n${H}X-A: a\x00b\r\n\r\n`),
    c('NUL in a header name', `GET /fuzz HTTP/1.1\r\n${H}X-\x00A: b\r\n\r\n`),
    c('space in a header name', `GET /fuzz HTTP/1.1\r\n${H}X A: b\r\n\r\n`),
    c('header line starting with a space', `GET /fuzz HTTP/1.1\r\n ${H}\r\n`),
    c('two Host headers', `GET /fuzz HTTP/1.1\r\n${H}Host: other.test\r\n\r\n`),
    // request line garbage
    c('lower-case method', `get /fuzz HTTP/1.1\r\n${H}\r\n`),
    c('unknown version', `GET /fuzz HTTP/9.9\r\n${H}\r\n`),
    c('version HTTP/1.10', `GET /fuzz HTTP/1.10\r\n${H}\r\n`),
    c('not HTTP', `GET /fuzz FOO/1.1\r\n${H}\r\n`),
    c('tab separators', `GET\t/fuzz\tHTTP/1.1\r\n${H}\r\n`),
    c('NUL in the target', `GET /fu\x00zz HTTP/1.1\r\n${H}\r\n`),
    c('control byte in the target', `GET /fu\x01zz HTTP/1.1\r\n${H}\r\n`),
    c('percent-encoded NUL', `GET /fu%00zz HTTP/1.1\r\n${H}\r\n`),
    c('bad percent escape', `GET /fu%zzz HTTP/1.1\r\n${H}\r\n`),
    c('dot segments above the root', `GET /../../etc/passwd HTTP/1.1\r\n${H}\r\n`),
    c('encoded dot segments above the root', `GET /%2e%2e/%2e%2e/x HTTP/1.1\r\n${H}\r\n`),
    c('asterisk target on GET', `GET * HTTP/1.1\r\n${H}\r\n`),
    c('empty lines, then FIN', `\r\n\r\n\r\n`, true),
    c('only a method', `GET\r\n\r\n`),
    c('a target longer than the header limit', `GET /${'a'.repeat(20_000)} HTTP/1.1\r\n${H}\r\n`),
    // absolute-form with odd hosts
    c('absolute-form with userinfo', `GET http://evil@${host}/fuzz HTTP/1.1\r\n${H}\r\n`),
    c('absolute-form with userinfo after the host', `GET http://${host}@evil.test/fuzz HTTP/1.1\r\n${H}\r\n`),
    c('absolute-form without a host', `GET http:///fuzz HTTP/1.1\r\n${H}\r\n`),
    c('absolute-form with an unclosed IPv6 bracket', `GET http://[::1/fuzz HTTP/1.1\r\n${H}\r\n`),
    c('absolute-form with a port out of range', `GET http://${host}:99999999/fuzz HTTP/1.1\r\n${H}\r\n`),
    c('absolute-form with a port that is not a number', `GET http://${host}:http/fuzz HTTP/1.1\r\n${H}\r\n`),
    c('absolute-form with a percent-encoded host', `GET http://%66uzz.test/fuzz HTTP/1.1\r\n${H}\r\n`),
    c('absolute-form with two ports', `GET http://${host}:80:81/fuzz HTTP/1.1\r\n${H}\r\n`),
    c('absolute-form with a double dot host', `GET http://a..${host}/fuzz HTTP/1.1\r\n${H}\r\n`),
    c('absolute-form with a backslash', `GET http://${host}\\@evil.test/fuzz HTTP/1.1\r\n${H}\r\n`),
    c('absolute-form with a non-HTTP scheme', `GET ftp://${host}/fuzz HTTP/1.1\r\n${H}\r\n`),
    c('absolute-form with a javascript scheme', `GET javascript://${host}/fuzz HTTP/1.1\r\n${H}\r\n`),
    c('Host with a slash', `GET /fuzz HTTP/1.1\r\nHost: ${host}/x\r\n\r\n`),
    c('Host with a double dot', `GET /fuzz HTTP/1.1\r\nHost: ..\r\n\r\n`),
  ]
}

/**
 * Valid heads with a bad or short body (the short ones then FIN). The gateway streams bodies
 * (nginx buffers them first), so the upstream may see the head, but never a complete request:
 * the body is refused as it arrives and the upstream request aborted.
 */
export function bodyCases(host: string): HttpCase[] {
  const post = (headers: string, body: string): string => `POST /fuzz HTTP/1.1\r\nHost: ${host}\r\n${headers}\r\n${body}`
  const chunked = (body: string): string => post('Transfer-Encoding: chunked\r\n', body)
  return [
    c('negative chunk size', chunked('-1\r\nabc\r\n0\r\n\r\n')),
    c('chunk size overflow', chunked('ffffffffffffffffff\r\nabc\r\n0\r\n\r\n')),
    c('chunk size not hex', chunked('zz\r\nabc\r\n0\r\n\r\n')),
    c('chunk data without CRLF', chunked('3\r\nabc0\r\n\r\n')),
    c('chunk size with bare LF', chunked('3\nabc\n0\n\n')),
    c('chunk extension garbage', chunked('3;\x01\x02=\r\nabc\r\n0\r\n\r\n')),
    c('chunk size with a space inside', chunked('1 0\r\nabcdefghijklmnop\r\n0\r\n\r\n')),
    c('chunk longer than announced', chunked('2\r\nabcdef\r\n0\r\n\r\n')),
    c('chunked body cut short', chunked('10\r\nabc'), true),
    c('Content-Length body cut short', post('Content-Length: 100\r\n', 'abc'), true),
    c('chunked body without its last chunk', chunked('3\r\nabc\r\n'), true),
  ]
}

/** Header floods: 10,000 headers, a 1 MiB header value, a 1 MiB header name, a 1 MiB target. */
export function floodCases(host: string): HttpCase[] {
  const H = `Host: ${host}\r\n`
  const many = Array.from({ length: 10_000 }, (_, i) => `X-H${i}: v\r\n`).join('')
  return [
    c('10,000 headers', `GET /fuzz HTTP/1.1\r\n${H}${many}\r\n`),
    c('one 1 MiB header', `GET /fuzz HTTP/1.1\r\n${H}X-Big: ${'a'.repeat(1024 * 1024)}\r\n\r\n`),
    c('1 MiB header name', `GET /fuzz HTTP/1.1\r\n${H}${'N'.repeat(1024 * 1024)}: v\r\n\r\n`),
    c('1 MiB target', `GET /${'b'.repeat(1024 * 1024)} HTTP/1.1\r\n${H}\r\n`),
  ]
}

/** Bytes no HTTP parser accepts in a request line or header (controls other than tab, and DEL in names). */
const FORBIDDEN = [0x00, 0x01, 0x07, 0x08, 0x0b, 0x0c, 0x0e, 0x1b, 0x1f, 0x7f]

/**
 * Seeded random requests: a valid request with one forbidden byte put inside a header name or
 * value, and request lines of random printable and control bytes.
 */
export function randomHttpCases(host: string, rand: () => number, count: number): HttpCase[] {
  const int = (n: number): number => Math.floor(rand() * n)
  const out: HttpCase[] = []
  for (let i = 0; i < count; i++) {
    if (i % 2 === 0) {
      const name = `X-Fuzz-${i}`
      const value = `value-${int(1e9)}`
      const bad = String.fromCharCode(FORBIDDEN[int(FORBIDDEN.length)]!)
      const inName = rand() < 0.5
      const at = 1 + int((inName ? name : value).length - 1)
      const line = inName ? `${name.slice(0, at)}${bad}${name.slice(at)}: ${value}` : `${name}: ${value.slice(0, at)}${bad}${value.slice(at)}`
      // DEL is legal in no name, but some parsers take it in values: keep it to names
      const l = !inName && bad === '\x7f' ? `${name.slice(0, at)}${bad}${name.slice(at)}: ${value}` : line
      out.push(c(inName || bad === '\x7f' ? 'forbidden byte in a header name' : 'forbidden byte in a header value', `GET /fuzz HTTP/1.1\r\nHost: ${host}\r\n${l}\r\n\r\n`))
    } else {
      // a random request line: bytes 0x00-0x7f with no CR/LF, always holding a control byte
      const n = 1 + int(80)
      let s = ''
      for (let k = 0; k < n; k++) {
        let b = int(128)
        if (b === 0x0d || b === 0x0a) b = 0x20
        s += String.fromCharCode(b)
      }
      const ctl = String.fromCharCode(FORBIDDEN[int(FORBIDDEN.length)]!)
      const at = int(s.length + 1)
      out.push(c('random request line', `${s.slice(0, at)}${ctl}${s.slice(at)}\r\nHost: ${host}\r\n\r\n`))
    }
  }
  return out
}
