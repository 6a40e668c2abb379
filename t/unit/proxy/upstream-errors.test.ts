import t from 'tap'
import {
  classifyUpstreamError, errorPage, reasonPhrase, ROUTE_NOT_FOUND_BODY, upstreamStatus,
} from '../../../core/proxy/upstream-errors.js'

const err = (code: string, cause?: unknown): Error => Object.assign(new Error(code), { code }, cause === undefined ? {} : { cause })

t.test('upstream errors: codes → 502/504 and whether nginx would try another node', async (t) => {
  const cases: [unknown, 502 | 504, boolean][] = [
    [err('ECONNREFUSED'), 502, true],
    [err('ECONNRESET'), 502, true],
    [err('UND_ERR_SOCKET'), 502, true],
    [err('ENOTFOUND'), 502, true],
    [err('EAI_AGAIN'), 502, true],
    [err('EHOSTUNREACH'), 502, true],
    [err('UND_ERR_CONNECT_TIMEOUT'), 504, true],
    [err('ETIMEDOUT'), 504, true],
    [err('UND_ERR_HEADERS_TIMEOUT'), 504, true],
    [err('UND_ERR_BODY_TIMEOUT'), 504, false],
    [err('DEPTH_ZERO_SELF_SIGNED_CERT'), 502, true],
    [err('ERR_TLS_CERT_ALTNAME_INVALID'), 502, true],
    [err('ERR_SSL_WRONG_VERSION_NUMBER'), 502, true],
    [err('SOMETHING_NEW'), 502, false],
    [new Error('no code'), 502, false],
    ['a string', 502, false],
    [null, 502, false],
    [Object.assign(new TypeError('fetch failed'), { cause: err('ECONNREFUSED') }), 502, true],
    [err('UND_ERR_WRAPPED', err('UND_ERR_CONNECT_TIMEOUT')), 504, true],
  ]
  for (const [e, status, retryable] of cases) {
    const label = e instanceof Error ? `${e.message}${e.cause ? ` (cause ${(e.cause as Error).message})` : ''}` : String(e)
    const got = classifyUpstreamError(e)
    t.equal(got.status, status, `${label} → ${status}`)
    t.equal(got.retryable, retryable, `${label} → ${retryable ? 'retry another node' : 'no retry'}`)
    t.equal(upstreamStatus(e), status)
  }
})

t.test('error pages: APISIX-Runtime nginx page byte for byte', async (t) => {
  const page400 = errorPage(400)
  t.equal(Buffer.byteLength(page400), 229, '400 page is 229 bytes, as APISIX serves it')
  t.equal(
    page400,
    '<html>\r\n<head><title>400 Bad Request</title></head>\r\n<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n' +
      '<hr><center>openresty</center>\r\n<p><em>Powered by <a href="https://apisix.apache.org/">APISIX</a>.</em></p></body>\r\n</html>\r\n',
  )
  const phrases: [number, string][] = [[502, 'Bad Gateway'], [503, 'Service Temporarily Unavailable'], [504, 'Gateway Time-out'], [404, 'Not Found'], [500, 'Internal Server Error'], [599, 'Error']]
  for (const [status, phrase] of phrases) {
    t.equal(reasonPhrase(status), phrase, `${status} → ${phrase}`)
    t.match(errorPage(status), `<center><h1>${status} ${phrase}</h1></center>`)
  }
  t.equal(ROUTE_NOT_FOUND_BODY, '{"error_msg":"404 Route Not Found"}\n')
})
