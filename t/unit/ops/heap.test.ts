import t from 'tap'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { spawnNode, collect, exited } from '../../lib/proc.js'
import { heapCare } from '../../../core/ops/heap.js'

const external = (): number => process.memoryUsage().arrayBuffers

t.test('heap care: a young collection after a page frees that page buffer once it is dropped; a full one runs too', async (t) => {
  const heap = heapCare()
  const size = 32 * 2 ** 20
  // A page's wrapper is young only until it survives two collections; on a busy machine one the
  // test did not ask for can promote it before it is dropped, and then no young collection frees
  // it. So a page is allocated and dropped at once, and the whole try is made up to three times.
  const attempt = async (): Promise<{ held: number; now: number; counted: boolean }> => {
    const before = external()
    let page: Buffer | undefined = Buffer.alloc(size, 1)
    const held = external()
    const counted = held - before >= page.length
    page = undefined
    const deadline = Date.now() + 5000
    let now = held
    while (Date.now() < deadline) {
      heap.minor()
      now = external()
      if (now <= held - size) break
      await new Promise((r) => setImmediate(r))
    }
    return { held, now, counted }
  }
  let result = await attempt()
  for (let i = 1; i < 3 && result.now > result.held - size; i++) {
    heap.major()
    result = await attempt()
  }
  t.ok(result.counted, 'the page buffer is counted while held')
  t.ok(result.now <= result.held - size, `released (${result.held} → ${result.now} bytes)`)
  t.doesNotThrow(() => heap.major(), 'a full collection runs')
})

// In a fresh Node process over the built module, as a worker runs it (no test harness in its heap).
const youngGeneration = `
import { getHeapSpaceStatistics } from 'node:v8'
const { heapCare } = await import(process.argv[1])
const young = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size
const heap = heapCare()
let kept = []
for (let page = 0; page < 40; page++) {
  for (let i = 0; i < 20000; i++) kept.push({ id: 'o' + page + '-' + i, value: { n: i, s: 'x'.repeat(64) + i } })
  heap.minor()
}
const grown = young()
kept = []
heap.major()
console.log(JSON.stringify({ grown, after: young() }))
`

t.test('heap care: the full collection gives back at once the young generation a large load grew', async (t) => {
  const module = pathToFileURL(join(import.meta.dirname, '..', '..', '..', 'dist', 'core', 'ops', 'heap.js')).href
  const p = spawnNode(process.execPath, ['--input-type=module', '-e', youngGeneration, module], { stdio: ['ignore', 'pipe', 'pipe'] })
  const output = collect(p)
  let line = ''
  p.stdout?.on('data', (b: Buffer) => (line += b.toString()))
  t.equal(await exited(p), 0, output())
  const { grown, after } = JSON.parse(line) as { grown: number; after: number }
  const mib = (x: number): string => (x / 2 ** 20).toFixed(1)
  t.ok(grown >= 16 * 2 ** 20, `surviving pages grew the young generation (${mib(grown)} MiB)`)
  t.ok(after <= grown / 4, `shrunk by the full collection: ${mib(grown)} → ${mib(after)} MiB`)
})
