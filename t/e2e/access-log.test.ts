import t from 'tap'
import { stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startEtcd } from '../lib/etcd.js'
import { BIN_APISIX, startGateway, writeGatewayConfig } from '../lib/gateway.js'
import { spawnNode, tempDir } from '../lib/proc.js'

/** Runs bin/apisix start to its exit (for start-up failures). */
function runStart(file: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawnNode(BIN_APISIX, ['start', '-c', file], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    p.stderr?.on('data', (b: Buffer) => (stderr += b))
    const kill = setTimeout(() => p.kill('SIGKILL'), 60_000)
    p.on('exit', (code) => {
      clearTimeout(kill)
      resolve({ code, stderr })
    })
  })
}

t.test('access log files', async (t) => {
  const etcd = await startEtcd(t)

  t.test('a path that cannot be opened → start fails with one line naming it, exit 1', async (t) => {
    const dir = await tempDir(t, 'alog-')
    const blocker = join(dir, 'a-file')
    await writeFile(blocker, '')
    const path = join(blocker, 'access.log')
    const c = await writeGatewayConfig(t, { etcd: etcd.url, config: { apisix: { access_log: { path } } } })
    const r = await runStart(c.file)
    t.equal(r.code, 1)
    // mkdir -p through a file reports EEXIST; open through it ENOTDIR
    const last = r.stderr.trim().split('\n').pop() ?? ''
    t.ok(last.startsWith(`apisix.access_log.path ${path}: cannot open: E`), last)
  })

  t.test('a relative path → created under the directory bin/apisix runs from, at start', async (t) => {
    const gw = await startGateway(t, { etcd: etcd.url, config: { apisix: { access_log: { path: 'logs/access.log' } } } })
    t.ok((await stat(join(gw.dir, 'logs', 'access.log'))).isFile())
    t.equal(await gw.stop(), 0, gw.output())
  })

  t.test('enable false → no file', async (t) => {
    const gw = await startGateway(t, { etcd: etcd.url, config: { apisix: { access_log: { enable: false } } } })
    await t.rejects(stat(gw.accessLog), { code: 'ENOENT' })
    t.equal(await gw.stop(), 0, gw.output())
  })
})
