import t, { type Test } from 'tap'
import { join } from 'node:path'
import { connect } from 'node:net'
import { writeGatewayConfig, ROOT } from '../lib/gateway.js'
import { adminOf } from '../lib/admin.js'
import { freePort } from '../lib/ports.js'
import { collect, exited, spawnNode, stopProcess, tempDir } from '../lib/proc.js'
import { eventually } from '../lib/eventually.js'

const portOpen = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = connect(port, '127.0.0.1')
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })

/** `npm start`'s launcher (what the npm script runs after set-up), on a temp config and etcd data dir. */
async function launch(t: Test, file: string, dataDir: string) {
  const proc = spawnNode(process.execPath, [join(ROOT, 'dist', 'bin', 'local-etcd.js')], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { APISIX_CONF: file, APISIX_ETCD_DATA_DIR: dataDir },
  })
  const output = collect(proc)
  t.teardown(() => stopProcess(proc))
  return { proc, output }
}

t.test('npm start: starts a local etcd when none answers, keeps its data across restarts, stops it on Ctrl-C', async (t) => {
  const etcdPort = await freePort()
  const conf = await writeGatewayConfig(t, { etcd: `http://127.0.0.1:${etcdPort}` })
  const dataDir = join(await tempDir(t, 'npmstart-'), 'etcd')
  const admin = adminOf({ admin: conf.admin })

  const first = await launch(t, conf.file, dataDir)
  await eventually(() => fetch(`http://127.0.0.1:${conf.http}/apisix/status/ready`).then((r) => r.status), (s) => s === 200, { timeoutMs: 40_000, describe: first.output })
  t.match(first.output(), /starting a local etcd/)
  const put = await admin.put('upstreams/kept', { nodes: { '127.0.0.1:1980': 1 }, type: 'roundrobin' })
  t.equal(put.status, 201, put.text)

  const done = exited(first.proc)
  first.proc.kill('SIGINT')
  t.equal(await done, 0, 'Ctrl-C → exit 0')
  t.equal(await portOpen(etcdPort), false, 'the managed etcd stopped with the gateway')

  const second = await launch(t, conf.file, dataDir)
  await eventually(() => fetch(`http://127.0.0.1:${conf.http}/apisix/status/ready`).then((r) => r.status), (s) => s === 200, { timeoutMs: 40_000, describe: second.output })
  const got = await admin.get('upstreams/kept')
  t.equal(got.status, 200, 'the object written before the restart is still there')
  t.same(got.json?.value?.nodes, { '127.0.0.1:1980': 1 })
  const done2 = exited(second.proc)
  second.proc.kill('SIGTERM')
  t.equal(await done2, 0)
})
