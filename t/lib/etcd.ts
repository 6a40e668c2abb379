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

/** Options of a test etcd. */
export interface EtcdOptions {
  /** etcd's --max-request-bytes (its default is 1.5 MiB): for tests writing bigger values */
  readonly maxRequestBytes?: number
}

/**
 * A real etcd in a temp dir on free loopback ports, stopped at teardown. `clientPort` picks the
 * client port (a gateway may already be pointed at it); a free one otherwise.
 */
export async function startEtcd(t: Test, clientPort?: number, o: EtcdOptions = {}): Promise<EtcdHandle> {
  // freePort() releases its ports before etcd binds them, so a test running beside this one can
  // take one first: an etcd that exits with "address already in use" starts again on new ports
  for (let attempt = 1; ; attempt++) {
    const h = await startEtcdOnce(t, clientPort, attempt < 3, o)
    if (h) return h
  }
}

/** One start on fresh ports; undefined when it lost a port to another process and `mayRetry`. */
async function startEtcdOnce(t: Test, clientPort: number | undefined, mayRetry: boolean, o: EtcdOptions): Promise<EtcdHandle | undefined> {
  const dir = await tempDir(t, 'etcd-')
  const [client, peer] = [clientPort ?? (await freePort()), await freePort()]
  const url = `http://127.0.0.1:${client}`
  const peerUrl = `http://127.0.0.1:${peer}`
  let proc: ChildProcess
  let out: () => string = () => ''
  let healthyAt = 0
  // only the first launch gives up early on a taken port (restart keeps its ports and waits)
  let first = true
  const launch = async (): Promise<void> => {
    proc = spawn(
      'etcd',
      ['--data-dir', dir, '--name', 't', '--listen-client-urls', url, '--advertise-client-urls', url, '--listen-peer-urls', peerUrl,
        '--initial-advertise-peer-urls', peerUrl, '--initial-cluster', `t=${peerUrl}`, '--log-level', 'warn',
        ...(o.maxRequestBytes ? ['--max-request-bytes', String(o.maxRequestBytes)] : [])],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    out = collect(proc)
    const p = proc
    await until(() => {
      if (first && p.exitCode !== null && /address already in use/.test(out())) return Promise.resolve()
      return fetch(`${url}/health`).then((r) => { if (!r.ok) throw new Error(`health ${r.status}`) })
    }, 15_000, () => out())
    healthyAt = Date.now()
  }
  await launch()
  first = false
  if (proc!.exitCode !== null && /address already in use/.test(out())) {
    if (mayRetry) return undefined
    throw new Error(`etcd could not bind its ports: ${out().slice(-500)}`)
  }
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
