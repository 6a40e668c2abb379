import { type ChildProcess } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'
import { freePort } from './ports.js'
import { collect, exited, spawnNode, stopProcess, tempDir } from './proc.js'
import { eventually } from './eventually.js'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const BIN_APISIX = join(ROOT, 'bin', 'apisix')
/** The admin key every test gateway uses. */
export const KEY = 'test-admin-key-0123456789abcdef'
export const VIEWER_KEY = 'test-viewer-key-0123456789abcdef'

export interface Gateway {
  readonly http: number
  readonly https: number
  readonly admin: number
  readonly metrics: number
  readonly dir: string
  readonly configFile: string
  readonly accessLog: string
  readonly proc: ChildProcess
  readonly pid: number
  /** SIGTERM → exit code (idempotent) */
  stop(): Promise<number | string>
  exited(): Promise<number | string>
  output(): string
  /** everything the gateway wrote on stderr so far (its own log), up to 16 MB */
  stderr(): string
}

export interface GatewayOptions {
  /** etcd client URL(s) */
  etcd: string | string[]
  /** deep-merged over the test config (JSON written as YAML) */
  config?: Record<string, unknown>
  workers?: number
  /** wait for /apisix/status/ready (default true) */
  waitReady?: boolean
  env?: Record<string, string>
}

/** Deep merge for plain objects (arrays replaced). */
export function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a }
  for (const [k, v] of Object.entries(b)) {
    const cur = out[k]
    out[k] = isObj(cur) && isObj(v) ? merge(cur, v) : v
  }
  return out
}
const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)

/** Writes a temp config.yaml for a test gateway on free loopback ports; returns its path and ports. */
export async function writeGatewayConfig(t: Test, o: GatewayOptions): Promise<{ file: string; dir: string; http: number; https: number; admin: number; metrics: number; accessLog: string }> {
  const [http, https, admin, metrics] = [await freePort(), await freePort(), await freePort(), await freePort()]
  const dir = await tempDir(t, 'conf-')
  const file = join(dir, 'config.yaml')
  const accessLog = join(dir, 'access.log')
  const base = {
    apisix: {
      node_listen: [{ ip: '127.0.0.1', port: http }],
      workers: o.workers ?? 1,
      ssl: { enable: true, listen: [{ ip: '127.0.0.1', port: https }] },
      access_log: { enable: true, path: accessLog },
    },
    plugin_attr: { prometheus: { export_addr: { ip: '127.0.0.1', port: metrics } } },
    deployment: {
      admin: {
        admin_key: [
          { name: 'admin', key: KEY, role: 'admin' },
          { name: 'viewer', key: VIEWER_KEY, role: 'viewer' },
        ],
        admin_listen: { ip: '127.0.0.1', port: admin },
      },
      etcd: { host: Array.isArray(o.etcd) ? o.etcd : [o.etcd], startup_retry: 10 },
    },
  }
  await writeFile(file, JSON.stringify(o.config ? merge(base, o.config) : base, null, 2))
  return { file, dir, http, https, admin, metrics, accessLog }
}

/** Spawns `bin/apisix start` on a temp config; waits until the admin and data plane answer (and config is loaded). */
export async function startGateway(t: Test, o: GatewayOptions): Promise<Gateway> {
  // freePort() releases its port before the gateway binds it, so a test running beside this one
  // can take it first: a gateway that exits with "already in use" is started again on new ports
  for (let attempt = 1; ; attempt++) {
    const gw = await startGatewayOnce(t, o, attempt < 3)
    if (gw) return gw
  }
}

/** One start on fresh ports; undefined when it lost a port to another process and `mayRetry`. */
async function startGatewayOnce(t: Test, o: GatewayOptions, mayRetry: boolean): Promise<Gateway | undefined> {
  const c = await writeGatewayConfig(t, o)
  const proc = spawnNode(BIN_APISIX, ['start', '-c', c.file], { cwd: c.dir, stdio: ['ignore', 'pipe', 'pipe'], ...(o.env ? { env: o.env } : {}) })
  const output = collect(proc)
  let stderr = ''
  proc.stderr?.on('data', (b: Buffer) => {
    if (stderr.length < 16 * 2 ** 20) stderr += b.toString()
  })
  let stopped: Promise<number | string> | undefined
  const gw: Gateway = {
    http: c.http,
    https: c.https,
    admin: c.admin,
    metrics: c.metrics,
    dir: c.dir,
    configFile: c.file,
    accessLog: c.accessLog,
    proc,
    pid: proc.pid ?? 0,
    stop: () => (stopped ??= stopProcess(proc)),
    exited: () => exited(proc),
    output,
    stderr: () => stderr,
  }
  t.teardown(() => gw.stop())
  const path = o.waitReady === false ? '/apisix/status' : '/apisix/status/ready'
  const state = await eventually(
    async () => {
      if (proc.exitCode !== null) return 'exited'
      const r = await fetch(`http://127.0.0.1:${c.http}${path}`)
      return r.status
    },
    (s) => s === 200 || s === 'exited',
    { timeoutMs: 60_000, describe: output },
  )
  if (state === 'exited') {
    if (mayRetry && /is already in use/.test(output())) return undefined
    throw new Error(`gateway exited with ${proc.exitCode}: ${output().slice(-2000)}`)
  }
  return gw
}
