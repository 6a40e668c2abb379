import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { connect } from 'node:tls'
import type { Test } from 'tap'
import { Etcd3 } from 'etcd3'
import { startEtcd } from '../lib/etcd.js'
import { BIN_APISIX, startGateway, type Gateway } from '../lib/gateway.js'
import { adminOf } from '../lib/admin.js'
import { eventually } from '../lib/eventually.js'
import { issue, makeCa } from '../lib/certs.js'

/** The TLS data plane benchmark (issue 4): PUT → first handshake, memory per object, handshakes/s. */

const OBJECTS = Number(process.env['BENCH_SSL_OBJECTS'] ?? 10_000)
const CHANGES = Number(process.env['BENCH_CHANGES'] ?? 100)
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 5)
const CONCURRENCY = 16

/** A stand-in for tap's Test: the helpers only register teardowns. */
function scope(): { t: Test; close(): Promise<void> } {
  const fns: (() => unknown)[] = []
  const t = { teardown: (fn: () => unknown) => fns.push(fn) } as unknown as Test
  return { t, close: async () => { for (const fn of fns.reverse()) await fn() } }
}

/** The worker processes of a gateway (children of its primary). */
function workerPids(gw: Gateway): number[] {
  const out: number[] = []
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid === gw.pid) out.push(Number(d))
    } catch {
      // gone
    }
  }
  return out
}

const rssKiB = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0)

/** One full handshake (no session); resolves with the served serial, or '' on failure. */
function handshakeSerial(port: number, servername: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false })
    s.once('secureConnect', () => {
      const serial = s.getPeerCertificate().serialNumber?.toUpperCase() ?? ''
      s.destroy()
      resolve(serial)
    })
    s.once('error', () => resolve(''))
  })
}

/** Full handshakes per second with `CONCURRENCY` clients for `SECONDS`, SNIs from `names`. */
async function handshakeRate(port: number, names: readonly string[]): Promise<number> {
  const end = Date.now() + SECONDS * 1000
  let done = 0
  let i = 0
  const loop = async (): Promise<void> => {
    while (Date.now() < end) {
      const name = names[i++ % names.length] ?? ''
      if ((await handshakeSerial(port, name)) !== '') done++
    }
  }
  const start = Date.now()
  await Promise.all(Array.from({ length: CONCURRENCY }, loop))
  return (done * 1000) / (Date.now() - start)
}

const pct = (sorted: readonly number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN

/** Runs the benchmark and prints its figures. */
export async function runTlsBench(): Promise<void> {
  const s = scope()
  // build dist/ first (bin/apisix rebuilds when a source is newer), so no gateway start pays for it
  spawnSync(BIN_APISIX, ['version'], { stdio: 'ignore', timeout: 300_000 })
  try {
    const etcd = await startEtcd(s.t)
    const ca = makeCa('Bench CA')
    const shared = issue(ca, { cn: 'bench', sans: ['*.bench.test'] })
    const one = { workers: 1 }

    // 1 object loaded: baseline memory and handshake rate
    const client = new Etcd3({ hosts: etcd.url })
    const now = Math.floor(Date.now() / 1000)
    const value = (i: number): string => JSON.stringify({ id: `b${i}`, sni: `s${i}.bench.test`, cert: shared.cert, key: shared.key, create_time: now, update_time: now })
    await client.put('/apisix/ssls/b0').value(value(0))
    const gw1 = await startGateway(s.t, { etcd: etcd.url, ...one })
    const w1 = workerPids(gw1)[0] ?? 0
    await handshakeSerial(gw1.https, 's0.bench.test')
    const rss1 = rssKiB(w1)
    const rate1 = await handshakeRate(gw1.https, ['s0.bench.test'])
    await gw1.stop()

    // OBJECTS objects written straight to etcd, then a gateway loads them all
    for (let i = 1; i < OBJECTS; i += 500) {
      await Promise.all(Array.from({ length: Math.min(500, OBJECTS - i) }, (_, k) => client.put(`/apisix/ssls/b${i + k}`).value(value(i + k))))
    }
    const loadStart = Date.now()
    const gw = await startGateway(s.t, { etcd: etcd.url, ...one, waitReady: false })
    await eventually(() => fetch(`http://127.0.0.1:${gw.http}/apisix/status/ready`).then((r) => r.status), (st) => st === 200, { timeoutMs: 300_000, describe: gw.output })
    const loadMs = Date.now() - loadStart
    const w = workerPids(gw)[0] ?? 0
    const rssLoaded = rssKiB(w)
    // every object's server built once (first handshake per object), then measured again
    const names = Array.from({ length: OBJECTS }, (_, i) => `s${i}.bench.test`)
    const warmStart = Date.now()
    if (process.env['BENCH_WARM'] !== '0') for (let i = 0; i < OBJECTS; i += 64) await Promise.all(names.slice(i, i + 64).map((n) => handshakeSerial(gw.https, n)))
    const warmMs = Date.now() - warmStart
    const rssBuilt = rssKiB(w)
    const rateN = await handshakeRate(gw.https, names)
    const rateNone = await handshakeRate(gw.https, ['s0.bench.test'])

    // PUT → first handshake with the new certificate, on objects among the loaded ones
    const admin = adminOf(gw)
    const certs = [issue(ca, { cn: 'bench-a', sans: ['*.bench.test'] }), issue(ca, { cn: 'bench-b', sans: ['*.bench.test'] })]
    const lat: number[] = []
    const putLat: number[] = []
    for (let k = 0; k < CHANGES; k++) {
      const c = certs[k % 2]!
      const id = `b${(k * 97) % OBJECTS}`
      const sni = `s${(k * 97) % OBJECTS}.bench.test`
      const t0 = performance.now()
      const r = await admin.put(`ssls/${id}`, { sni, cert: c.cert, key: c.key })
      if (r.status !== 200 && r.status !== 201) throw new Error(`PUT ${id}: ${r.status} ${r.text}`)
      putLat.push(performance.now() - t0)
      const deadline = Date.now() + 10_000
      while ((await handshakeSerial(gw.https, sni)) !== c.serialHex) {
        if (Date.now() > deadline) throw new Error(`${sni} not served with its new certificate within 10 s`)
      }
      lat.push(performance.now() - t0)
    }
    lat.sort((a, b) => a - b)
    putLat.sort((a, b) => a - b)
    client.close()

    const kib = (n: number): string => `${(n / 1024).toFixed(1)} MiB`
    console.log(`TLS data plane benchmark (${OBJECTS} ssl objects, 1 worker, ${CONCURRENCY} concurrent clients, ${SECONDS} s per rate)`)
    console.log(`  start with ${OBJECTS} objects → ready:            ${loadMs} ms`)
    console.log(`  PUT → first handshake with the new certificate: p50 ${pct(lat, 50).toFixed(1)} ms, p99 ${pct(lat, 99).toFixed(1)} ms, max ${(lat[lat.length - 1] ?? 0).toFixed(1)} ms (${CHANGES} changes)`)
    console.log(`    of which the admin PUT answer:              p50 ${pct(putLat, 50).toFixed(1)} ms, p99 ${pct(putLat, 99).toFixed(1)} ms`)
    console.log(`  worker RSS: 1 object ${kib(rss1)}; ${OBJECTS} loaded ${kib(rssLoaded)}; all built ${kib(rssBuilt)}`)
    console.log(`  memory per loaded object: ${(((rssLoaded - rss1) * 1024) / (OBJECTS - 1)).toFixed(0)} B (lazy), ${(((rssBuilt - rss1) * 1024) / (OBJECTS - 1)).toFixed(0)} B (policy server built)`)
    console.log(`  first handshake of each of ${OBJECTS} objects (server built on first use): ${warmMs} ms in all`)
    console.log(`  full handshakes/s: 1 object loaded ${rate1.toFixed(0)}; ${OBJECTS} loaded, one SNI ${rateNone.toFixed(0)}; ${OBJECTS} loaded, SNIs spread over all ${rateN.toFixed(0)}`)
  } finally {
    await s.close()
  }
}
