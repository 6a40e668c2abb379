import t from 'tap'
import { certificateRecords, type CertRecord, type ConsumerLike, type ParsedCert, type SslLike } from '../../../core/x509/records.js'
import { persistentMapOf } from '../../../core/collections/persistent-map.js'
import { createGatewayMetrics } from '../../../core/metrics/gateway.js'
import { createExpiryTracker, type CertSources, type Held } from '../../../core/ops/expiry.js'
import { seeded } from '../../lib/random.js'

// A stand-in PEM whose body names the subject; parse counts its calls.
const pem = (cn: string): string => `-----BEGIN CERTIFICATE-----\n${cn}\n-----END CERTIFICATE-----\n`

// Lists of objects → the snapshot's maps by id (username for consumers). An object keeps its
// entry while unchanged, as apply.ts keeps an unchanged key's entry.
const entries = new WeakMap<object, Held<object>>()
const held = <T extends object>(value: T): Held<T> => {
  let e = entries.get(value) as Held<T> | undefined
  if (e === undefined) entries.set(value, (e = { value }))
  return e
}
function sources(s: { ssls: readonly (SslLike & object)[]; consumers: readonly (ConsumerLike & object)[] }): CertSources {
  return {
    ssls: new Map(s.ssls.map((x) => [String(x.id ?? ''), held(x)])),
    consumers: new Map(s.consumers.map((x) => [x.username ?? '', held(x)])),
  }
}

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
    publish: (records: Iterable<CertRecord>) => published.push([...records].map((r) => `${r.kind}:${r.id}:${r.subject}`)),
    defer: (fn) => void later.push(fn),
    clock: () => (clock += o.clockStep ?? 0),
    ...(o.sliceMs !== undefined ? { sliceMs: o.sliceMs } : {}),
  })
  /** Runs deferred work until none is left; returns how many deferred steps ran. */
  const flush = Object.assign(
    (): number => {
      let n = 0
      while (later.length > 0) {
        n++
        later.shift()?.()
      }
      return n
    },
    /** Runs one deferred step. */
    { one: (): void => later.shift()?.() },
  )
  return { tracker, parsed, published, flush }
}

t.test('expiry tracker: nothing runs before the deferred step; one pass publishes every certificate', async (t) => {
  const h = harness()
  const ssl = { id: 's1', cert: pem('a'), snis: ['a.test'], client: { ca: pem('ca') } }
  const consumer = { username: 'bob', plugins: { 'mtls-auth': { certificates: [pem('bob')] } } }
  h.tracker.update(sources({ ssls: [ssl], consumers: [consumer] }))
  t.same(h.published, [], 'deferred, not synchronous')
  h.flush()
  t.same(h.published, [['server:s1:CN=a', 'client-ca:s1:CN=ca', 'consumer:bob:CN=bob']])
})

t.test('expiry tracker: an unchanged object (same identity) is not parsed again; a replaced one is', async (t) => {
  const h = harness()
  const a = { id: 'a', cert: pem('a'), sni: 'a.test' }
  const b = { id: 'b', cert: pem('b'), sni: 'b.test' }
  h.tracker.update(sources({ ssls: [a, b], consumers: [] }))
  h.flush()
  const b2 = { id: 'b', cert: pem('b2'), sni: 'b.test' }
  h.tracker.update(sources({ ssls: [a, b2], consumers: [] }))
  h.flush()
  t.same(h.parsed, ['a', 'b', 'b2'])
  t.same(h.published[1], ['server:a:CN=a', 'server:b:CN=b2'])
})

t.test('expiry tracker: updates while a pass waits → only the newest sources are published', async (t) => {
  const h = harness()
  h.tracker.update(sources({ ssls: [{ id: '1', cert: pem('one'), sni: 'x' }], consumers: [] }))
  h.tracker.update(sources({ ssls: [{ id: '2', cert: pem('two'), sni: 'x' }], consumers: [] }))
  h.flush()
  t.same(h.published, [['server:2:CN=two']])
})

t.test('expiry tracker: a long pass yields when its slice is spent and restarts on newer sources', async (t) => {
  const h = harness({ sliceMs: 5, clockStep: 3 })
  const ssls = Array.from({ length: 10 }, (_, i) => ({ id: String(i), cert: pem(`c${i}`), sni: 'x' }))
  h.tracker.update(sources({ ssls, consumers: [] }))
  const steps = h.flush()
  t.ok(steps > 3, `the pass ran in ${steps} slices`)
  t.equal(h.published.length, 1)
  t.equal(h.published[0]?.length, 10)
})

t.test('expiry tracker: an unreadable certificate is left out; idle() resolves when the pass is done', async (t) => {
  const h = harness()
  h.tracker.update(sources({ ssls: [{ id: 'x', cert: pem('broken'), sni: 'x' }, { id: 'y', cert: pem('fine'), sni: 'y' }], consumers: [] }))
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
  h.tracker.update(sources({ ssls, consumers: [{ username: 'eve', plugins: { 'mtls-auth': { certificates: [pem('shared')] } } }] }))
  h.flush()
  t.same(h.parsed, ['shared'])
  t.same(h.published, [['server:s1:CN=shared', 'server:s2:CN=shared', 'server:s3:CN=shared', 'consumer:eve:CN=shared']])
  // a later pass with a new object holding the same text parses it again (the memo does not outlive its pass)
  h.tracker.update(sources({ ssls: [...ssls, { id: 's4', cert: pem('shared'), sni: 's4.test' }], consumers: [] }))
  h.flush()
  t.same(h.parsed, ['shared', 'shared'])
})

t.test('expiry tracker: one changed ssl object among 1,000 → only its certificates are read; the gauge still lists all', async (t) => {
  const h = harness()
  const objs = Array.from({ length: 1000 }, (_, i) => ({ id: `s${i}`, cert: pem(`c${i}`), sni: `s${i}.test` }))
  let ssls = persistentMapOf(objs.map((o) => [o.id, held(o)] as const))
  const none = new Map<string, Held<ConsumerLike & object>>()
  h.tracker.update({ ssls, consumers: none })
  h.flush()
  t.equal(h.parsed.length, 1000)
  const cases: [string, () => void, string[], number][] = [
    ['replaced', () => (ssls = ssls.set('s7', held({ id: 's7', cert: pem('new7'), sni: 's7.test', client: { ca: pem('ca7') } }))), ['new7', 'ca7'], 1001],
    ['added', () => (ssls = ssls.set('s1000', held({ id: 's1000', cert: pem('c1000'), sni: 'x.test' }))), ['c1000'], 1002],
    ['deleted', () => (ssls = ssls.delete('s3')), [], 1001],
  ]
  for (const [what, change, read, records] of cases) {
    h.parsed.length = 0
    change()
    h.tracker.update({ ssls, consumers: none })
    h.flush()
    t.same(h.parsed, read, `${what}: read only the changed object`)
    t.equal(h.published.at(-1)?.length, records, `${what}: every certificate published`)
  }
})

/** A record as one string (tcompare cannot print an invalid Date). */
const flat = (r: CertRecord): string => `${r.kind}|${r.id}|${r.names.join(',')}|${r.subject}|${r.notAfter.getTime()}`

// Stand-in parse for the seeded run: the body names the subject and a day offset; 'broken' throws.
const fakeParse = (block: string): ParsedCert => {
  const cn = block.split('\n')[1] ?? ''
  if (cn.startsWith('broken')) throw new Error('bad')
  const day = Number(cn.split('-')[1] ?? 0)
  return { subject: `CN=${cn.split('-')[0] ?? ''}`, notAfter: cn.startsWith('nodate') ? new Date(Number.NaN) : new Date(Date.UTC(2030, 0, 1 + day)) }
}

t.test('expiry tracker: a seeded sequence of changes, passes dropped mid-way → each published set equals a full recompute, and so does the gauge', async (t) => {
  for (const seed of [1, 7, 42, 2026]) {
    const rnd = seeded(seed)
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!
    const text = (): string => {
      const r = rnd()
      if (r < 0.05) return '$secret://vault/x'
      if (r < 0.1) return pem('broken')
      if (r < 0.13) return pem('nodate')
      // a small pool: objects share certificates and label sets repeat
      return pem(`${pick(['a', 'b', 'c', 'd'])}-${Math.floor(rnd() * 5)}`)
    }
    const ssl = (id: string): SslLike & object => ({
      id,
      ...(rnd() < 0.8 ? { cert: text() } : {}),
      ...(rnd() < 0.3 ? { certs: [text(), text()] } : {}),
      ...(rnd() < 0.5 ? { snis: [`${id}.test`, '*.x.test'] } : rnd() < 0.5 ? { sni: `${id}.test` } : {}),
      ...(rnd() < 0.4 ? { client: { ca: rnd() < 0.5 ? text() : text() + text() } } : {}),
    })
    const consumer = (username: string): ConsumerLike & object => ({
      username,
      plugins: rnd() < 0.8 ? { 'mtls-auth': { certificates: [text(), text()].slice(0, 1 + Math.floor(rnd() * 2)) } } : {},
    })
    let ssls = persistentMapOf(Array.from({ length: 30 }, (_, i) => [`s${i}`, held(ssl(`s${i}`))] as const))
    let consumers: ReadonlyMap<string, Held<ConsumerLike & object>> = new Map(Array.from({ length: 10 }, (_, i) => [`u${i}`, held(consumer(`u${i}`))] as const))
    const later: (() => void)[] = []
    let latest: Iterable<CertRecord> = []
    let clock = 0
    const tracker = createExpiryTracker({
      parse: fakeParse,
      publish: (r) => (latest = r),
      defer: (fn) => void later.push(fn),
      clock: () => (clock += 2),
      sliceMs: 5,
    })
    tracker.update({ ssls, consumers })
    for (let round = 0; round < 60; round++) {
      for (let batch = 1 + Math.floor(rnd() * 3); batch > 0; batch--) {
        for (let n = 1 + Math.floor(rnd() * 4); n > 0; n--) {
          const r = rnd()
          if (r < 0.6) {
            const id = `s${Math.floor(rnd() * 45)}`
            ssls = r < 0.15 ? ssls.delete(id) : ssls.set(id, held(ssl(id)))
          } else {
            const name = `u${Math.floor(rnd() * 15)}`
            const next = new Map(consumers)
            if (r < 0.7) next.delete(name)
            else next.set(name, held(consumer(name)))
            consumers = next
          }
        }
        tracker.update({ ssls, consumers })
        // run part of the pass: a newer update then drops it mid-way
        for (let k = Math.floor(rnd() * 4); k > 0 && later.length > 0; k--) later.shift()?.()
      }
      while (later.length > 0) later.shift()?.()
      const full = certificateRecords([...ssls.values()].map((e) => e.value), [...consumers.values()].map((e) => e.value), fakeParse)
      t.same([...latest].map(flat), full.map(flat), `seed ${seed} round ${round}: records`)
      const incremental = createGatewayMetrics()
      const recomputed = createGatewayMetrics()
      incremental.setExpiry(latest)
      recomputed.setExpiry(full)
      t.same(incremental.snapshot(), recomputed.snapshot(), `seed ${seed} round ${round}: gauge`)
    }
  }
})

t.test('expiry tracker: a pass dropped mid-way for newer sources → what it read is not read again', async (t) => {
  const h = harness({ sliceMs: 5, clockStep: 3 })
  const ssls = Array.from({ length: 10 }, (_, i) => ({ id: String(i), cert: pem(`c${i}`), sni: 'x' }))
  h.tracker.update(sources({ ssls, consumers: [] }))
  for (let k = 0; k < 3; k++) h.flush.one()
  const readBefore = h.parsed.length
  t.ok(readBefore > 0 && readBefore < 10, `the first pass read ${readBefore} objects before it was dropped`)
  h.tracker.update(sources({ ssls: [...ssls, { id: '10', cert: pem('c10'), sni: 'x' }], consumers: [] }))
  h.flush()
  t.same(h.parsed, [...ssls.map((_, i) => `c${i}`), 'c10'], 'every certificate read once')
  t.same(h.published, [[...ssls.map((_, i) => `server:${i}:CN=c${i}`), 'server:10:CN=c10']])
})
