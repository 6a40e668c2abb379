// The bench's plain-Node reference: the least a Node proxy does for the same loads, so the
// gateway's figures can be read against what Node and undici cost by themselves on this machine.
// node:cluster with 2 workers (SCHED_NONE, as the gateway runs them), session-ticket keys shared
// by the workers, one node:https server per worker whose SNICallback picks the RSA or the ECDSA
// certificate, and every request sent upstream through one undici Pool with dispatch() into the
// response. No routing, plugins, timeouts, metrics or logs. With `mtlsPort`, a second server on
// that port asks every client for a certificate and verifies it against dir/ca.crt (OpenSSL's
// verification only, no DN or fingerprint derived): the reference for the client-certificate rows.
//
//   node t/bench/node-ref.mjs '{"port":..,"upstream":..,"dir":..,"mtlsPort":..}'   (dir holds rsa.crt/key, ec.crt/key, ca.crt)
import cluster from 'node:cluster'
import { createServer } from 'node:https'
import { createSecureContext } from 'node:tls'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Pool } from 'undici'

const o = JSON.parse(process.argv[2] ?? '{}')
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade'])

if (cluster.isPrimary) {
  cluster.schedulingPolicy = cluster.SCHED_NONE
  const env = { REF_TICKET_KEYS: randomBytes(48).toString('hex') }
  const workers = [cluster.fork(env), cluster.fork(env)]
  process.on('SIGTERM', () => {
    let left = workers.length
    for (const w of workers) {
      w.once('exit', () => --left === 0 && process.exit(0))
      w.process.kill('SIGTERM')
    }
  })
} else {
  const pem = (n) => ({ cert: readFileSync(`${o.dir}/${n}.crt`), key: readFileSync(`${o.dir}/${n}.key`) })
  const pool = new Pool(`http://127.0.0.1:${o.upstream}`, { connections: 128, allowH2: false })
  const serve = (port, mtls) => {
    // the SNI callback's context is the one that verifies the client: it carries the CA
    const ca = mtls ? { ca: readFileSync(`${o.dir}/ca.crt`) } : {}
    const rsa = createSecureContext({ ...pem('rsa'), ...ca })
    const ec = createSecureContext({ ...pem('ec'), ...ca })
    const server = createServer({
      ...pem('rsa'),
      ...ca,
      ...(mtls ? { requestCert: true, rejectUnauthorized: true } : {}),
      ticketKeys: Buffer.from(process.env.REF_TICKET_KEYS, 'hex'),
      SNICallback: (name, cb) => cb(null, name.startsWith('ec') ? ec : rsa),
      keepAliveTimeout: 300_000,
    })
    server.on('request', (req, res) => {
      const headers = []
      const raw = req.rawHeaders
      for (let i = 0; i < raw.length; i += 2) if (!HOP.has(raw[i].toLowerCase())) headers.push(raw[i], raw[i + 1])
      pool.dispatch({ path: req.url, method: req.method, headers }, new Relay(res))
    })
    server.on('tlsClientError', (_err, s) => s.destroy())
    server.listen(port, '127.0.0.1')
  }
  serve(o.port, false)
  if (o.mtlsPort) serve(o.mtlsPort, true)
  process.on('SIGTERM', () => process.exit(0))
}

/** undici's handler (its controller interface): the upstream's answer written into the client's response. */
class Relay {
  constructor(res) {
    this.res = res
  }
  onRequestStart() {}
  onResponseStart(controller, status) {
    const raw = controller.rawHeaders
    const headers = []
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i].toString('latin1')
      if (!HOP.has(name.toLowerCase())) headers.push(name, raw[i + 1].toString('latin1'))
    }
    this.res.writeHead(status, headers)
    this.res.on('drain', () => controller.resume())
  }
  onResponseData(controller, chunk) {
    if (!this.res.write(chunk)) controller.pause()
  }
  onResponseEnd() {
    this.res.end()
  }
  onResponseError() {
    if (this.res.headersSent) this.res.destroy()
    else this.res.writeHead(502).end()
  }
}
