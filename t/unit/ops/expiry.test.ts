import t from 'tap'
import type { CertRecord, ParsedCert } from '../../../core/cert-records.js'
import { createExpiryTracker } from '../../../core/ops/expiry.js'

// A stand-in PEM whose body names the subject; parse counts its calls.
const pem = (cn: string): string => `-----BEGIN CERTIFICATE-----\n${cn}\n-----END CERTIFICATE-----\n`

function harness(o: { sliceMs?: number; clockStep?: number } = {}) {
  const parsed: string[] = []
  const published: string[][] = []
  const later: (() => void)[] = []
  let clock = 0
  const tracker = createExpiryTracker({
    parse: (block: string): ParsedCert => {
      const cn = block.split('\n')[1] ?? ''
      parsed.push(cn)
      if (cn === 'broken') throw new Error('bad')
      return { subject: `CN=${cn}`, notAfter: new Date(Date.UTC(2030, 0, 1)) }
    },
    publish: (records: readonly CertRecord[]) => published.push(records.map((r) => `${r.kind}:${r.id}:${r.subject}`)),
    defer: (fn) => void later.push(fn),
    clock: () => (clock += o.clockStep ?? 0),
    ...(o.sliceMs !== undefined ? { sliceMs: o.sliceMs } : {}),
  })
  /** Runs deferred work until none is left; returns how many deferred steps ran. */
  const flush = (): number => {
    let n = 0
    while (later.length > 0) {
      n++
      later.shift()?.()
    }
    return n
  }
  return { tracker, parsed, published, flush }
}

t.test('expiry tracker: nothing runs before the deferred step; one pass publishes every certificate', async (t) => {
  const h = harness()
  const ssl = { id: 's1', cert: pem('a'), snis: ['a.test'], client: { ca: pem('ca') } }
  const consumer = { username: 'bob', plugins: { 'mtls-auth': { certificates: [pem('bob')] } } }
  h.tracker.update({ ssls: [ssl], consumers: [consumer] })
  t.same(h.published, [], 'deferred, not synchronous')
  h.flush()
  t.same(h.published, [['server:s1:CN=a', 'client-ca:s1:CN=ca', 'consumer:bob:CN=bob']])
})

t.test('expiry tracker: an unchanged object (same identity) is not parsed again; a replaced one is', async (t) => {
  const h = harness()
  const a = { id: 'a', cert: pem('a'), sni: 'a.test' }
  const b = { id: 'b', cert: pem('b'), sni: 'b.test' }
  h.tracker.update({ ssls: [a, b], consumers: [] })
  h.flush()
  const b2 = { id: 'b', cert: pem('b2'), sni: 'b.test' }
  h.tracker.update({ ssls: [a, b2], consumers: [] })
  h.flush()
  t.same(h.parsed, ['a', 'b', 'b2'])
  t.same(h.published[1], ['server:a:CN=a', 'server:b:CN=b2'])
})

t.test('expiry tracker: updates while a pass waits → only the newest sources are published', async (t) => {
  const h = harness()
  h.tracker.update({ ssls: [{ id: '1', cert: pem('one'), sni: 'x' }], consumers: [] })
  h.tracker.update({ ssls: [{ id: '2', cert: pem('two'), sni: 'x' }], consumers: [] })
  h.flush()
  t.same(h.published, [['server:2:CN=two']])
})

t.test('expiry tracker: a long pass yields when its slice is spent and restarts on newer sources', async (t) => {
  const h = harness({ sliceMs: 5, clockStep: 3 })
  const ssls = Array.from({ length: 10 }, (_, i) => ({ id: String(i), cert: pem(`c${i}`), sni: 'x' }))
  h.tracker.update({ ssls, consumers: [] })
  const steps = h.flush()
  t.ok(steps > 3, `the pass ran in ${steps} slices`)
  t.equal(h.published.length, 1)
  t.equal(h.published[0]?.length, 10)
})

t.test('expiry tracker: an unreadable certificate is left out; idle() resolves when the pass is done', async (t) => {
  const h = harness()
  h.tracker.update({ ssls: [{ id: 'x', cert: pem('broken'), sni: 'x' }, { id: 'y', cert: pem('fine'), sni: 'y' }], consumers: [] })
  let idle = false
  void h.tracker.idle().then(() => (idle = true))
  h.flush()
  await Promise.resolve()
  t.ok(idle)
  t.same(h.published, [['server:y:CN=fine']])
})

t.test('expiry tracker: objects sharing one certificate text → it is parsed once a pass, each object still gets its record', async (t) => {
  const h = harness()
  const ssls = ['s1', 's2', 's3'].map((id) => ({ id, cert: pem('shared'), sni: `${id}.test` }))
  h.tracker.update({ ssls, consumers: [{ username: 'eve', plugins: { 'mtls-auth': { certificates: [pem('shared')] } } }] })
  h.flush()
  t.same(h.parsed, ['shared'])
  t.same(h.published, [['server:s1:CN=shared', 'server:s2:CN=shared', 'server:s3:CN=shared', 'consumer:eve:CN=shared']])
  // a later pass with a new object holding the same text parses it again (the memo does not outlive its pass)
  h.tracker.update({ ssls: [...ssls, { id: 's4', cert: pem('shared'), sni: 's4.test' }], consumers: [] })
  h.flush()
  t.same(h.parsed, ['shared', 'shared'])
})
