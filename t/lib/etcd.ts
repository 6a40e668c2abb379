import { spawn, type ChildProcess } from 'node:child_process'
import type { Test } from 'tap'
import { freePort } from './ports.js'
import { collect, stopProcess, tempDir } from './proc.js'
import { until } from './eventually.js'

export interface EtcdHandle {
  readonly url: string
  readonly pid: number
  /** Date.now() when /health first answered after the latest start */
  readonly healthyAt: number
  /** stops this etcd (SIGTERM; data kept) */
  stop(): Promise<number | string>
  /** starts it again on the same ports and data */
  restart(): Promise<void>
  output(): string
}

/**
 * A real etcd in a temp dir on free loopback ports, stopped at teardown. `clientPort` picks the
 * client port (a gateway may already be pointed at it); a free one otherwise.
 */
export async function startEtcd(t: Test, clientPort?: number): Promise<EtcdHandle> {
  const dir = await tempDir(t, 'etcd-')
  const [client, peer] = [clientPort ?? (await freePort()), await freePort()]
  const url = `http://127.0.0.1:${client}`
  const peerUrl = `http://127.0.0.1:${peer}`
  let proc: ChildProcess
  let out: () => string = () => ''
  let healthyAt = 0
  const launch = async (): Promise<void> => {
    proc = spawn(
      'etcd',
      ['--data-dir', dir, '--name', 't', '--listen-client-urls', url, '--advertise-client-urls', url, '--listen-peer-urls', peerUrl,
        '--initial-advertise-peer-urls', peerUrl, '--initial-cluster', `t=${peerUrl}`, '--log-level', 'warn'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    out = collect(proc)
    await until(() => fetch(`${url}/health`).then((r) => { if (!r.ok) throw new Error(`health ${r.status}`) }), 15_000, () => out())
    healthyAt = Date.now()
  }
  await launch()
  t.teardown(() => stopProcess(proc))
  return {
    url,
    get pid() {
      return proc.pid ?? 0
    },
    get healthyAt() {
      return healthyAt
    },
    stop: () => stopProcess(proc),
    restart: launch,
    output: () => out(),
  }
}
