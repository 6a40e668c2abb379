import t from 'tap'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { startEtcd } from '../lib/etcd.js'
import { startGateway } from '../lib/gateway.js'
import { adminOf } from '../lib/admin.js'
import { eventually } from '../lib/eventually.js'
import { freePort } from '../lib/ports.js'
import { collect, stopProcess } from '../lib/proc.js'
import { sClient } from '../lib/openssl.js'
import { OpensslCa, type OsslCert } from '../lib/openssl-ca.js'

/**
 * How long a staple is kept (CONTRACT.md `ocsp_stapling`: at most `cache_ttl`, never past the
 * response's nextUpdate), against real `openssl ocsp -port` responders, which sign a new
 * response (a new producedAt) for every request. Waiting out the 60 s minimum of cache_ttl is
 * the point of this file, so it does nothing else: its two cases run side by side, and tap runs
 * the file beside the others.
 *
 * No clock is read for the bounds: the staples' own producedAt and nextUpdate (the responder's
 * signed times) show that the first response was served until cache_ttl (or its nextUpdate) had
 * passed, and then replaced by a newer one.
 */

/** What `openssl s_client -status` saw: the staple's times (ms), or undefined without a staple. */
interface Staple {
  readonly producedAt: number
  readonly nextUpdate: number | undefined
  readonly good: boolean
}

const timeOf = (text: string, label: string): number | undefined => {
  const m = new RegExp(`${label}: (\\w{3} +\\d+ \\d\\d:\\d\\d:\\d\\d \\d{4} GMT)`).exec(text)
  return m ? Date.parse(m[1]!) : undefined
}

t.test('OCSP staples are kept for cache_ttl, or until the response\'s nextUpdate when that comes first', async (t) => {
  const ca = new OpensslCa('OCSP TTL CA')
  t.teardown(() => ca.cleanup())
  const [portTtl, portNext] = [await freePort(), await freePort()]
  const serverCert = (cn: string, port: number): OsslCert =>
    ca.issue(cn, ['basicConstraints = CA:FALSE', 'keyUsage = digitalSignature', 'extendedKeyUsage = serverAuth', `subjectAltName = DNS:${cn}`, `authorityInfoAccess = OCSP;URI:http://127.0.0.1:${port}`])
  const ttlCert = serverCert('ttl.test', portTtl)
  const nextCert = serverCert('next.test', portNext)
  // one responder without nextUpdate, one whose responses say nextUpdate = thisUpdate + 1 min
  const responder = (port: number, extra: string[]) => {
    const p = spawn('openssl', ['ocsp', '-port', String(port), '-index', join(ca.dir, 'index.txt'), '-CA', ca.self.certPath, '-rsigner', ca.self.certPath, '-rkey', ca.self.keyPath, '-ignore_err', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] })
    t.teardown(() => stopProcess(p))
    return collect(p)
  }
  const ttlOut = responder(portTtl, [])
  const nextOut = responder(portNext, ['-nmin', '1'])

  const etcd = await startEtcd(t)
  const gw = await startGateway(t, { etcd: etcd.url })
  const admin = adminOf(gw)
  for (const [id, c, ttl] of [['ttl', ttlCert, 60], ['next', nextCert, 3600]] as const) {
    const r = await admin.put(`ssls/${id}`, { sni: c.name, cert: c.cert + ca.self.cert, key: c.key, ocsp_stapling: { enabled: true, cache_ttl: ttl } })
    if (r.status !== 200 && r.status !== 201) throw new Error(`PUT ssls/${id}: ${r.status} ${r.text}`)
  }
  const describe = () => `${ttlOut()}\n${nextOut()}\n${gw.output()}`

  const staple = async (sni: string): Promise<Staple | undefined> => {
    const r = await sClient(gw.https, ['-status', '-servername', sni, '-CAfile', ca.self.certPath], 'Q\n')
    if (!/Verify return code: 0 \(ok\)/.test(r.stdout)) throw new Error(`handshake with ${sni} failed: ${r.all.slice(-300)}`)
    const producedAt = timeOf(r.stdout, 'Produced At')
    if (!/OCSP Response Status: successful/.test(r.stdout) || producedAt === undefined) return undefined
    return { producedAt, nextUpdate: timeOf(r.stdout, 'Next Update'), good: /Cert Status: good/.test(r.stdout) }
  }

  /** Polls `sni` until its staple is another response than `first`; every staple seen before must be `first`. */
  const nextStaple = async (sni: string, first: Staple): Promise<{ second: Staple; seen: Set<number> }> => {
    const seen = new Set<number>()
    const second = await eventually(async () => {
      const s = await staple(sni)
      if (s) seen.add(s.producedAt)
      return s
    }, (s) => s !== undefined && s.producedAt !== first.producedAt, { timeoutMs: 150_000, intervalMs: 1_000, describe })
    return { second: second!, seen }
  }

  const [ttlFirst, nextFirst] = await Promise.all(['ttl.test', 'next.test'].map((sni) => eventually(() => staple(sni), (s) => s !== undefined, { timeoutMs: 15_000, intervalMs: 200, describe })))
  t.ok(ttlFirst?.good && nextFirst?.good, 'both objects staple a good response')
  t.equal(ttlFirst!.nextUpdate, undefined, 'the first responder gives no nextUpdate: cache_ttl alone bounds the cache')
  t.ok(nextFirst!.nextUpdate !== undefined && nextFirst!.nextUpdate - nextFirst!.producedAt <= 60_000, 'the second responder says nextUpdate within a minute')

  // both waits run side by side (each about a minute); the checks follow
  const askResponder = (): Promise<number | undefined> => new Promise((resolve) => {
    const p = spawn('openssl', ['ocsp', '-issuer', ca.self.certPath, '-cert', ttlCert.certPath, '-url', `http://127.0.0.1:${portTtl}`, '-noverify', '-resp_text'], { stdio: ['ignore', 'pipe', 'pipe'] })
    const out = collect(p)
    p.on('close', () => resolve(timeOf(out(), 'Produced At')))
  })
  const [ttl, next] = await Promise.all([
    (async () => {
      // the responder answers differently meanwhile: a response it signs now is newer than the staple
      const direct = await eventually(askResponder, (at) => at !== undefined && at > ttlFirst!.producedAt, { timeoutMs: 10_000, intervalMs: 500, describe })
      const stillFirst = await staple('ttl.test')
      return { direct: direct!, stillFirst, ...(await nextStaple('ttl.test', ttlFirst!)) }
    })(),
    nextStaple('next.test', nextFirst!),
  ])

  t.test('cache_ttl 60 s: the same response is stapled until cache_ttl has passed, then a newer one', async (t) => {
    t.equal(ttl.stillFirst?.producedAt, ttlFirst!.producedAt, `while the responder signs newer responses (${new Date(ttl.direct).toISOString()}), the staple is still the first one`)
    t.same([...ttl.seen].filter((p) => p !== ttl.second.producedAt), [ttlFirst!.producedAt], 'before the refresh only the first response was stapled')
    t.ok(ttl.second.good, 'the refreshed staple is good')
    const kept = (ttl.second.producedAt - ttlFirst!.producedAt) / 1000
    t.ok(kept >= 60, `the first response was kept for cache_ttl: the next one was produced ${kept} s later (≥ 60)`)
  })

  t.test('cache_ttl 3600 s, nextUpdate 1 min: the staple is replaced after its nextUpdate, long before cache_ttl', async (t) => {
    t.same([...next.seen].filter((p) => p !== next.second.producedAt), [nextFirst!.producedAt], 'before the refresh only the first response was stapled')
    t.ok(next.second.good, 'the refreshed staple is good')
    t.ok(next.second.producedAt >= nextFirst!.nextUpdate!, `the next response was produced at or after the first one's nextUpdate (${new Date(next.second.producedAt).toISOString()} ≥ ${new Date(nextFirst!.nextUpdate!).toISOString()})`)
    t.ok(next.second.producedAt - nextFirst!.producedAt < 3_600_000, 'well within cache_ttl: nextUpdate, the earlier bound, decided')
  })
})
