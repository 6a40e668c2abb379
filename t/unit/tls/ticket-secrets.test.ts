import t from 'tap'
import { decodeSecrets, encodeSecrets, firstSecrets, rotateSecrets, ticketKeyName } from '../../../core/tls/ticket-secrets.js'

const A = Buffer.alloc(48, 0xa1)
const B = Buffer.alloc(48, 0xb2)
const C = Buffer.alloc(48, 0xc3)

t.test('ticket secrets: a rotation makes the fresh secret current and keeps only the one it replaced', async (t) => {
  const s0 = firstSecrets(A)
  t.same([s0.epoch, s0.current, s0.previous], [0, A, undefined])
  const s1 = rotateSecrets(s0, B)
  t.same([s1.epoch, s1.current, s1.previous], [1, B, A])
  const s2 = rotateSecrets(s1, C)
  t.same([s2.epoch, s2.current, s2.previous], [2, C, B], 'A is forgotten after two rotations')
})

t.test('ticket secrets: encode → decode gives the same secrets back; a bare hex secret is epoch 0', async (t) => {
  for (const s of [firstSecrets(A), rotateSecrets(firstSecrets(A), B), rotateSecrets(rotateSecrets(firstSecrets(A), B), C)])
    t.same(decodeSecrets(encodeSecrets(s)), s, `epoch ${s.epoch}`)
  t.same(decodeSecrets(A.toString('hex')), firstSecrets(A))
})

t.test('ticket secrets: malformed text → undefined', async (t) => {
  const cases = ['', 'x', `1:${A.toString('hex')}:zz`, `-1:${A.toString('hex')}`, `1:abc`, `1:${A.toString('hex')}:${B.toString('hex')}:${C.toString('hex')}`, `a:${A.toString('hex')}`, '00ff']
  for (const c of cases) t.equal(decodeSecrets(c), undefined, JSON.stringify(c.slice(0, 20)))
})

t.test('ticket secrets: the key name is the first 16 bytes of the ticket keys', async (t) => {
  const keys = Buffer.concat([Buffer.alloc(16, 1), Buffer.alloc(32, 2)])
  t.equal(ticketKeyName(keys), '01'.repeat(16))
})
