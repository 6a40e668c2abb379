import t from 'tap'
import { heapCare } from '../../../core/ops/heap.js'

const external = (): number => process.memoryUsage().arrayBuffers

t.test('heap care: a young collection after a page frees that page buffer once it is dropped; a full one runs too', async (t) => {
  const heap = heapCare()
  const size = 32 * 2 ** 20
  let page: Buffer | undefined = Buffer.alloc(size, 1)
  const held = external()
  t.ok(held >= size, 'the page buffer is counted while held')
  t.equal(page.length, size)
  page = undefined
  const deadline = Date.now() + 5000
  let now = held
  while (Date.now() < deadline) {
    heap.minor()
    now = external()
    if (now <= held - size) break
    await new Promise((r) => setImmediate(r))
  }
  t.ok(now <= held - size, `released (${held} → ${now} bytes)`)
  t.doesNotThrow(() => heap.major(), 'a full collection runs')
})
