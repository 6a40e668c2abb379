import t from 'tap'
import { readFileSync } from 'node:fs'
import { startEtcd } from '../lib/etcd.js'
import { startGateway } from '../lib/gateway.js'
import { childrenOf } from '../lib/proc-tree.js'

// bin/start.ts gives the data-plane workers a fixed glibc mmap threshold, so the large etcd pages
// of their first load go back to the system when freed instead of staying in the malloc heap.

/** MALLOC_MMAP_THRESHOLD_ in the environment each worker of `pid` was started with. */
function workerThresholds(pid: number): (string | undefined)[] {
  return childrenOf(pid).map((w) => {
    const env = readFileSync(`/proc/${w}/environ`, 'utf8').split('\0')
    return env.find((e) => e.startsWith('MALLOC_MMAP_THRESHOLD_='))?.slice('MALLOC_MMAP_THRESHOLD_='.length)
  })
}

const cases: { name: string; env: Record<string, string>; want: string }[] = [
  { name: 'not set by the operator: every worker gets 1 MiB', env: {}, want: String(2 ** 20) },
  { name: "set by the operator: every worker keeps the operator's value", env: { MALLOC_MMAP_THRESHOLD_: '65536' }, want: '65536' },
]

for (const c of cases) {
  t.test(`glibc mmap threshold of the workers, ${c.name}`, async (t) => {
    const etcd = await startEtcd(t)
    const gw = await startGateway(t, { etcd: etcd.url, workers: 2, env: c.env })
    const got = workerThresholds(gw.pid)
    t.equal(got.length, 2, 'two workers')
    t.same(got, [c.want, c.want])
  })
}
