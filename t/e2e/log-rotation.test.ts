import t from 'tap'
import { httpStatus as get } from '../lib/raw-http.js'
import { readFile, rename } from 'node:fs/promises'
import { startEtcd } from '../lib/etcd.js'
import { startGateway } from '../lib/gateway.js'
import { eventually } from '../lib/eventually.js'
import { childrenOf } from '../lib/proc-tree.js'

/** The uris logged in `file` ([] when it does not exist). */
const urisIn = async (file: string): Promise<string[]> =>
  (await readFile(file, 'utf8').catch(() => ''))
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => String((JSON.parse(l) as { uri: unknown }).uri))

t.test('log rotation: SIGUSR1 makes the workers reopen the access log by name, and never opens the Node inspector', async (t) => {
  const etcd = await startEtcd(t)
  const gw = await startGateway(t, { etcd: etcd.url, workers: 2 })
  await eventually(() => gw.output(), (out) => out.includes('"msg":"gateway started"'), { timeoutMs: 60_000, describe: gw.output })
  // a request on each fresh connection: with 2 workers, both have written a line before the move
  for (let i = 0; i < 8; i++) t.equal(await get(gw.http, `/before-${i}`), 404, `request ${i} answered`)
  await eventually(() => urisIn(gw.accessLog), (u) => u.length === 8, { describe: () => `log: ${gw.accessLog}` })

  const rotated = `${gw.accessLog}.1`
  await rename(gw.accessLog, rotated)
  t.ok(process.kill(gw.pid, 'SIGUSR1'), 'SIGUSR1 sent to the primary')
  await eventually(() => gw.output(), (out) => out.includes('SIGUSR1: the workers reopen their access logs'), { describe: gw.output })
  // the reopen happens in each worker when the primary's message arrives: requests until the
  // new file has one line from each worker's requests (the moved file must get none of them)
  let n = 0
  await eventually(
    async () => {
      await get(gw.http, `/after-${n++}`)
      return urisIn(gw.accessLog)
    },
    (u) => u.length >= 4,
    { timeoutMs: 15_000, describe: () => `new log lines: ${n} requests sent` },
  )
  const moved = await urisIn(rotated)
  const fresh = await urisIn(gw.accessLog)
  // two workers append to one file, each in the background: their lines may interleave out of order
  t.same(moved.slice(0, 8).sort(), Array.from({ length: 8 }, (_, i) => `/before-${i}`), 'the moved file keeps the lines written before')
  t.ok(fresh.every((u) => u.startsWith('/after-')), 'the new file has only lines written after the signal')
  t.ok(moved.filter((u) => u.startsWith('/after-')).length <= 2, 'at most a request per worker in flight at the signal went to the moved file')

  // a signal sent straight to a worker (e.g. to the whole process group) reopens too, never the inspector
  const workers = childrenOf(gw.pid)
  t.equal(workers.length, 2, 'two workers')
  for (const w of workers) process.kill(w, 'SIGUSR1')
  t.equal(await get(gw.http, '/still-serving'), 404, 'still serving after SIGUSR1 to the workers')
  t.notMatch(gw.output(), /Debugger listening/, 'no process opened the Node inspector')
  t.same(childrenOf(gw.pid).sort(), workers.sort(), 'no worker restarted')
})
