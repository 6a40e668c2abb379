import t from 'tap'
import { connect, createServer, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2'
import type { AddressInfo } from 'node:net'
import type { OutgoingHttpHeader, OutgoingHttpHeaders } from 'node:http'
import { H2Response } from '../../../core/server/h2.js'

/**
 * H2Response's head over a real node:http2 pair on loopback: what a client receives for the
 * header list or object the pipeline hands writeHead (the upstream's list, repeats kept).
 */
async function answer(write: (res: H2Response) => void): Promise<{ headers: IncomingHttpHeaders; body: string }> {
  const server = createServer()
  server.on('stream', (stream: ServerHttp2Stream) => write(new H2Response(stream, false)))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const client = connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)
  try {
    return await new Promise((resolve, reject) => {
      const req = client.request({ ':path': '/' })
      let headers: IncomingHttpHeaders = {}
      let body = ''
      req.on('response', (h) => (headers = h))
      req.setEncoding('utf8')
      req.on('data', (d: string) => (body += d))
      req.on('end', () => resolve({ headers, body }))
      req.on('error', reject)
      req.end()
    })
  } finally {
    client.close()
    await new Promise((r) => server.close(r))
  }
}

t.test('a flat header list: repeats become one list, connection-specific names are dropped, names lower-cased', async (t) => {
  const list: OutgoingHttpHeader[] = ['Set-Cookie', 'a=1', 'Content-Type', 'text/plain', 'Set-Cookie', 'b=2', 'Connection', 'keep-alive', 'Keep-Alive', 'timeout=5', 'Transfer-Encoding', 'chunked', 'TE', 'trailers', 'X-A', '1']
  const r = await answer((res) => {
    res.setHeader('X-Early', 'e')
    res.setHeader('x-a', '0')
    res.writeHead(201, list)
    res.end('ok')
  })
  t.equal(r.headers[':status'], 201)
  t.same(r.headers['set-cookie'], ['a=1', 'b=2'], 'both cookies, in order')
  t.equal(r.headers['content-type'], 'text/plain')
  t.equal(r.headers['x-early'], 'e', 'a setHeader before writeHead is kept')
  t.equal(r.headers['x-a'], '0, 1', "a list name also set by setHeader keeps both values")
  for (const n of ['connection', 'keep-alive', 'transfer-encoding', 'te']) t.notOk(n in r.headers, `${n} is not sent`)
  t.equal(r.body, 'ok')
})

t.test('a header object: its value replaces a setHeader one; connection-specific names are dropped', async (t) => {
  const head: OutgoingHttpHeaders = { 'Content-Type': 'application/json', 'x-a': '2', upgrade: 'h2c', 'Http2-Settings': 'x', 'x-u': undefined }
  const r = await answer((res) => {
    res.setHeader('X-A', '1')
    res.writeHead(503, head)
    res.end('{}')
  })
  t.equal(r.headers[':status'], 503)
  t.equal(r.headers['content-type'], 'application/json')
  t.equal(r.headers['x-a'], '2')
  for (const n of ['upgrade', 'http2-settings', 'x-u']) t.notOk(n in r.headers, `${n} is not sent`)
  t.equal(r.body, '{}')
})
