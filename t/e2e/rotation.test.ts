import t from 'tap'
import { Agent, request } from 'undici'
import { startEtcd } from '../lib/etcd.js'
import { startGateway } from '../lib/gateway.js'
import { adminOf } from '../lib/admin.js'
import { issue, makePki, type Issued } from '../lib/certs.js'
import { startEcho } from '../lib/echo.js'
import { eventually } from '../lib/eventually.js'
import { handshake } from '../lib/tls-client.js'

const CONNECTIONS = 50
const ROTATIONS = 20
const SNI = 'rot.test'

/** A serial in one spelling (upper-case hex, no leading zeros), whoever printed it. */
const serialOf = (hex: string | undefined): string => (hex ?? '').toUpperCase().replace(/^0+/, '')

t.test('certificate rotation under load', { timeout: 90_000 }, async (t) => {
  const etcd = await startEtcd(t)
  const gw = await startGateway(t, { etcd: etcd.url })
  const admin = adminOf(gw)
  const echo = await startEcho(t)
  const pki = makePki({ servers: [[SNI]] })
  const fresh = (): Issued => issue(pki.ca, { cn: SNI, sans: [SNI] })
  const newHandshakeSerial = async (): Promise<string> => serialOf((await handshake({ port: gw.https, servername: SNI })).peer?.serialNumber)

  t.equal((await admin.put('ssls/rot', { sni: SNI, cert: pki.server.cert, key: pki.server.key })).status, 201)
  t.equal((await admin.put('routes/rot', { uri: '/*', host: SNI, upstream: { type: 'roundrobin', nodes: { [echo.hostPort]: 1 } } })).status, 201)
  await eventually(newHandshakeSerial, (s) => s === serialOf(pki.server.serialHex), { describe: gw.output })

  // 50 keep-alive connections, one request at a time on each; every new connection is counted
  const agent = new Agent({ connections: CONNECTIONS, allowH2: false, pipelining: 1, keepAliveTimeout: 120_000, connect: { servername: SNI, rejectUnauthorized: false, checkServerIdentity: () => undefined } })
  t.teardown(() => agent.close())
  let opened = 0
  agent.on('connect', () => opened++)
  const counts = { ok: 0, failed: 0 }
  const failures: string[] = []
  let running = true
  const worker = async (): Promise<void> => {
    while (running) {
      try {
        const r = await request(`https://127.0.0.1:${gw.https}/load`, { dispatcher: agent, headers: { host: SNI } })
        await r.body.text()
        if (r.statusCode === 200) counts.ok++
        else {
          counts.failed++
          failures.push(`status ${r.statusCode}`)
        }
      } catch (err) {
        counts.failed++
        failures.push(String((err as Error).message ?? err))
      }
    }
  }
  const workers = Array.from({ length: CONNECTIONS }, () => worker())
  // all 50 connections open and busy before the first rotation
  await eventually(() => opened, (n) => n >= CONNECTIONS && counts.ok >= 2 * CONNECTIONS, { timeoutMs: 20_000, describe: gw.output })
  const openedBefore = opened

  let last = pki.server
  for (let i = 0; i < ROTATIONS; i++) {
    last = fresh()
    const put = await admin.put('ssls/rot', { sni: SNI, cert: last.cert, key: last.key })
    if (put.status !== 200) t.fail(`rotation ${i + 1}: PUT → ${put.status} ${put.text}`)
    const want = serialOf(last.serialHex)
    await eventually(newHandshakeSerial, (s) => s === want, { timeoutMs: 10_000, describe: gw.output })
  }
  const okAtEnd = counts.ok
  await eventually(() => counts.ok, (n) => n >= okAtEnd + CONNECTIONS, { timeoutMs: 10_000, describe: gw.output })
  running = false
  await Promise.all(workers)

  t.equal(counts.failed, 0, `no failed request out of ${counts.ok + counts.failed} (${failures.slice(0, 3).join('; ')})`)
  t.ok(counts.ok > 10 * CONNECTIONS, `requests kept flowing: ${counts.ok}`)
  t.equal(opened, openedBefore, `the ${openedBefore} established connections stayed open through ${ROTATIONS} rotations (${opened} connections in all)`)
  t.ok(openedBefore <= CONNECTIONS + 5, `about ${CONNECTIONS} connections, not hundreds: ${openedBefore}`)
  t.equal(await newHandshakeSerial(), serialOf(last.serialHex), 'a new handshake sees the last certificate')
})
