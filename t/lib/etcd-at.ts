import { spawn, type ChildProcess } from 'node:child_process'
import type { Test } from 'tap'
import { freePort } from './ports.js'
import { collect, stopProcess, tempDir } from './proc.js'
import { until } from './eventually.js'

/**
 * A real etcd on a client port chosen by the caller (a gateway may already be pointed at it),
 * in a temp dir, stopped at teardown. Resolves when /health answers, with the moment it did.
 */
export async function startEtcdAt(t: Test, clientPort: number): Promise<{ url: string; pid: number; healthyAt: number; output(): string }> {
  const dir = await tempDir(t, 'etcd-at-')
  const url = `http://127.0.0.1:${clientPort}`
  const peerUrl = `http://127.0.0.1:${await freePort()}`
  const proc: ChildProcess = spawn(
    'etcd',
    ['--data-dir', dir, '--name', 't', '--listen-client-urls', url, '--advertise-client-urls', url, '--listen-peer-urls', peerUrl,
      '--initial-advertise-peer-urls', peerUrl, '--initial-cluster', `t=${peerUrl}`, '--log-level', 'warn'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  const output = collect(proc)
  t.teardown(() => stopProcess(proc))
  await until(() => fetch(`${url}/health`).then((r) => { if (!r.ok) throw new Error(`health ${r.status}`) }), 15_000, output)
  return { url, pid: proc.pid ?? 0, healthyAt: Date.now(), output }
}
