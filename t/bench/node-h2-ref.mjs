// The bench's plain-Node HTTP/2 reference (scenario 7): the least a Node HTTP/2 proxy does, so
// the gateway's HTTP/2 figures can be read against what node:http2 and undici cost by themselves.
// node:cluster with 2 workers; the primary accepts and hands the connections to them in turn, so
// h2load's 16 long-lived connections split 8/8 as the gateway's balance table splits them (with
// SCHED_NONE the kernel gave them 1/15 or 6/10 in many runs and the reference's rounds swung from
// 8.9k to 24.2k req/s: its median measured the split, not node:http2; cluster's SCHED_RR hands a
// burst to whichever worker answers first: 5/11 and 7/9 seen). One
// http2.createSecureServer per worker with the RSA certificate (ALPN h2), each stream sent
// upstream over HTTP/1.1 through one undici Pool with dispatch() into the stream. No routing,
// plugins, client certificates, timeouts, metrics or logs.
//
//   node t/bench/node-h2-ref.mjs '{"port":..,"upstream":..,"dir":..}'   (dir holds rsa.crt/key)
import cluster from 'node:cluster'
import { createSecureServer } from 'node:http2'
import { readFileSync } from 'node:fs'
import { createServer as createNetServer } from 'node:net'
import { Pool } from 'undici'

const o = JSON.parse(process.argv[2] ?? '{}')
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade'])

if (cluster.isPrimary) {
  const workers = [cluster.fork(), cluster.fork()]
  let next = 0
  // the sockets are paused until a worker's TLS server takes them: no byte is read here
  const front = createNetServer({ pauseOnConnect: true }, (socket) => workers[next++ % workers.length].send('conn', socket))
  let ready = 0
  for (const w of workers) w.once('message', () => ++ready === workers.length && front.listen(o.port, '127.0.0.1'))
  process.on('SIGTERM', () => {
    front.close()
    let left = workers.length
    for (const w of workers) {
      w.once('exit', () => --left === 0 && process.exit(0))
      w.process.kill('SIGTERM')
    }
  })
} else {
  const pool = new Pool(`http://127.0.0.1:${o.upstream}`, { connections: 128, allowH2: false })
  const server = createSecureServer({ cert: readFileSync(`${o.dir}/rsa.crt`), key: readFileSync(`${o.dir}/rsa.key`), settings: { maxConcurrentStreams: 128 } })
  server.on('stream', (stream, h) => {
    stream.on('error', () => undefined)
    const headers = ['host', String(h[':authority'] ?? '')]
    for (const name of Object.keys(h)) if (name[0] !== ':' && !HOP.has(name)) headers.push(name, String(h[name]))
    pool.dispatch({ path: String(h[':path']), method: String(h[':method']), headers }, new Relay(stream))
  })
  process.on('message', (m, socket) => m === 'conn' && socket && server.emit('connection', socket))
  process.send('ready')
  process.on('SIGTERM', () => process.exit(0))
}

/** undici's handler (its controller interface): the upstream's answer written into the client's stream. */
class Relay {
  constructor(stream) {
    this.stream = stream
  }
  onRequestStart() {}
  onResponseStart(controller, status) {
    const raw = controller.rawHeaders
    const headers = { ':status': status }
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i].toString('latin1').toLowerCase()
      if (!HOP.has(name)) headers[name] = raw[i + 1].toString('latin1')
    }
    if (this.stream.destroyed) return
    this.stream.respond(headers)
    this.stream.on('drain', () => controller.resume())
  }
  onResponseData(controller, chunk) {
    if (!this.stream.destroyed && !this.stream.write(chunk)) controller.pause()
  }
  onResponseEnd() {
    if (!this.stream.destroyed) this.stream.end()
  }
  onResponseError() {
    if (this.stream.destroyed) return
    if (this.stream.headersSent) this.stream.close(2)
    else this.stream.respond({ ':status': 502 }, { endStream: true })
  }
}
