import t from 'tap'
import { PeerCertCache } from '../../../core/tls/peer-cache.js'
import type { ClientCertFacts } from '../../../core/x509/cert.js'

const facts = (tag: string): ClientCertFacts => ({ fingerprint: tag }) as unknown as ClientCertFacts

t.test('peer certificate cache: facts made once per certificate and policy, bounded, never shared between policies', async (t) => {
  const cache = new PeerCertCache(3)
  const a = {}
  const b = {}
  let made = 0
  const make = (der: Buffer): ClientCertFacts => {
    made++
    return facts(der.toString())
  }
  const one = cache.entry(a, Buffer.from('cert-1'), make)
  t.equal(one.facts?.fingerprint, 'cert-1', 'facts of the certificate')
  t.equal(one.intermediates, undefined, 'no chain length before one was found within the depth')
  one.intermediates = 1
  t.equal(cache.entry(a, Buffer.from('cert-1'), make), one, 'the same DER under the same policy: the same entry')
  t.equal(made, 1, 'facts made once')
  t.equal(cache.entry(b, Buffer.from('cert-1'), make).intermediates, undefined, 'another policy (another CA or depth) knows nothing of it')
  t.equal(made, 2, 'and makes its own facts')
  for (const n of [2, 3, 4]) cache.entry(a, Buffer.from(`cert-${n}`), make)
  t.equal(cache.size(a), 3, 'at most 3 entries per policy')
  t.not(cache.entry(a, Buffer.from('cert-1'), make), one, 'the oldest went first')
  t.equal(cache.entry(a, Buffer.from('cert-x'), () => undefined).facts, undefined, 'a DER that cannot be read keeps undefined facts')
})

t.test('peer certificate cache: evicting an entry a session depends on (pinned) tells its policy; others leave silently', async (t) => {
  const dropped: object[] = []
  const cache = new PeerCertCache(2, (p) => dropped.push(p))
  const a = {}
  const make = (der: Buffer): ClientCertFacts => facts(der.toString())
  cache.entry(a, Buffer.from('plain'), make)
  cache.entry(a, Buffer.from('deep'), make).pinned = true
  cache.entry(a, Buffer.from('third'), make)
  t.same(dropped, [], 'an entry that was not pinned went: nothing to drop')
  cache.entry(a, Buffer.from('fourth'), make)
  t.equal(dropped.length, 1, 'the pinned entry went: its policy hears it')
  t.equal(dropped[0], a)
  cache.entry(a, Buffer.from('fifth'), make)
  t.equal(dropped.length, 1, 'once')
})
