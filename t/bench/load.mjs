// A small TLS load generator for what wrk cannot do: keep-alive requests with a client
// certificate, full and resumed handshakes. Run as a child process; prints one JSON line:
// { requests|handshakes, seconds, rate, p50ms, p99ms, resumed, errors, cpuSeconds }.
//
//   node t/bench/load.mjs keepalive  '{"port":..,"servername":..,"host":..,"connections":..,"seconds":..,"cert":..,"key":..}'
//   node t/bench/load.mjs handshake  '{"port":..,"servername":..,"concurrency":..,"seconds":..,"resume":true,"ocsp":true,"cert":..,"key":..}'
//
// Key exchange: X25519 (then P-256) unless "groups" says otherwise. Node 24's client would offer
// the post-quantum X25519MLKEM768 first, which the gateway takes and nginx on Debian's OpenSSL 3.0
// cannot: the rows would compare different work.
import { connect } from 'node:tls'
import { readFileSync } from 'node:fs'

const [mode, json] = process.argv.slice(2)
const o = JSON.parse(json ?? '{}')
const tlsOpts = {
  host: '127.0.0.1',
  port: o.port,
  servername: o.servername,
  rejectUnauthorized: false,
  ...(o.cert ? { cert: readFileSync(o.cert), key: readFileSync(o.key) } : {}),
  ...(o.maxVersion ? { maxVersion: o.maxVersion } : {}),
  ecdhCurve: o.groups ?? 'X25519:P-256',
  // "ocsp": the client sends status_request, as browsers and `openssl s_client -status` do
  ...(o.ocsp ? { requestOCSP: true } : {}),
}
const lat = []
let errors = 0
let resumed = 0
// handshakes that got an OCSP staple (with "ocsp")
let stapled = 0
const pct = (a, p) => {
  if (a.length === 0) return 0
  const s = Float64Array.from(a).sort()
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]
}

function keepalive() {
  const req = Buffer.from(`GET ${o.path ?? '/'} HTTP/1.1\r\nHost: ${o.host ?? o.servername}\r\nUser-Agent: bench\r\n\r\n`)
  let stop = false
  let warm = true
  const one = () =>
    new Promise((resolve) => {
      const s = connect(tlsOpts)
      let buf = ''
      let t0 = 0n
      const send = () => {
        if (stop) return s.end(), resolve()
        buf = ''
        t0 = process.hrtime.bigint()
        s.write(req)
      }
      s.setNoDelay(true)
      s.setEncoding('latin1')
      s.on('secureConnect', send)
      s.on('data', (d) => {
        buf += d
        const end = buf.indexOf('\r\n\r\n')
        if (end < 0) return
        const head = buf.slice(0, end).toLowerCase()
        const m = /content-length: *(\d+)/.exec(head)
        const done = m ? buf.length >= end + 4 + Number(m[1]) : buf.endsWith('0\r\n\r\n')
        if (!done) return
        if (!head.startsWith('http/1.1 200')) errors++
        if (!warm) lat.push(Number(process.hrtime.bigint() - t0) / 1e6)
        send()
      })
      s.on('error', () => {
        errors++
        resolve()
      })
      s.on('close', () => resolve())
    })
  const all = Array.from({ length: o.connections ?? 32 }, one)
  const cpu0 = { v: process.cpuUsage() }
  let t1 = 0n
  const t0 = process.hrtime.bigint()
  setTimeout(() => {
    warm = false
    cpu0.v = process.cpuUsage()
    t1 = process.hrtime.bigint()
  }, 1000)
  setTimeout(() => {
    stop = true
    const secs = Number(process.hrtime.bigint() - t1) / 1e9
    const cpu = process.cpuUsage(cpu0.v)
    report({ requests: lat.length, seconds: secs, rate: lat.length / secs, p50ms: pct(lat, 50), p99ms: pct(lat, 99), errors, cpuSeconds: (cpu.user + cpu.system) / 1e6 })
    void Promise.race([Promise.all(all), new Promise((r) => setTimeout(r, 2000))]).then(() => process.exit(0))
  }, 1000 + (o.seconds ?? 5) * 1000)
  void t0
}

async function handshake() {
  let session
  if (o.resume) {
    session = await new Promise((resolve, reject) => {
      const s = connect(tlsOpts)
      s.on('session', (sess) => {
        resolve(sess)
        s.destroy()
      })
      s.on('error', reject)
    })
  }
  let stop = false
  const one = async () => {
    while (!stop) {
      const t0 = process.hrtime.bigint()
      await new Promise((resolve) => {
        const s = connect({ ...tlsOpts, ...(session ? { session } : {}) })
        let done = false
        if (o.ocsp) s.on('OCSPResponse', (r) => { if (r && r.length > 0) stapled++ })
        s.on('secureConnect', () => {
          done = true
          lat.push(Number(process.hrtime.bigint() - t0) / 1e6)
          if (s.isSessionReused()) resumed++
          // end(), never destroy(): the client's last flight (Finished, and its Certificate and
          // CertificateVerify when it has one) is still being written; destroy() would drop it and
          // the server would never finish (or verify) the handshake it is measured on
          s.end()
        })
        // what the server sends after the handshake (session tickets) is read and dropped
        s.resume()
        s.on('error', () => {
          if (!done) errors++
          s.destroy()
        })
        s.on('close', () => resolve())
        // a server that never closes must not stall the run
        s.setTimeout(10_000, () => {
          if (!done) errors++
          s.destroy()
        })
      })
    }
  }
  const cpu0 = process.cpuUsage()
  const t0 = process.hrtime.bigint()
  setTimeout(() => (stop = true), (o.seconds ?? 5) * 1000)
  await Promise.all(Array.from({ length: o.concurrency ?? 8 }, one))
  const secs = Number(process.hrtime.bigint() - t0) / 1e9
  const cpu = process.cpuUsage(cpu0)
  report({ handshakes: lat.length, seconds: secs, rate: lat.length / secs, p50ms: pct(lat, 50), p99ms: pct(lat, 99), resumed, ...(o.ocsp ? { stapled } : {}), errors, cpuSeconds: (cpu.user + cpu.system) / 1e6 })
  process.exit(0)
}

function report(r) {
  process.stdout.write(JSON.stringify(r) + '\n')
}

if (mode === 'keepalive') keepalive()
else if (mode === 'handshake') await handshake()
else {
  process.stderr.write('usage: load.mjs keepalive|handshake JSON\n')
  process.exit(2)
}
