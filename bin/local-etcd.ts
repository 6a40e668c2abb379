import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadLocalConfig, isLoopback } from '../core/config/local.js'

/**
 * `npm start`: starts a local etcd (data in data/etcd/) when none answers at the configured
 * address, runs `bin/apisix start` on conf/config.yaml in the foreground, and stops that etcd
 * when the gateway stops.
 */
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
/** npm start's etcd takes requests up to 8 MiB (etcd's default: 1.5 MiB; it advises at most 10). */
export const LOCAL_ETCD_MAX_REQUEST_BYTES = 8 * 2 ** 20
const file = process.env['APISIX_CONF'] ?? join(root, 'conf', 'config.yaml')

async function answers(url: string): Promise<boolean> {
  try {
    const r = await fetch(`${url.replace(/\/+$/, '')}/health`, { signal: AbortSignal.timeout(1000) })
    return r.status < 500
  } catch {
    return false
  }
}

function stop(p: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) return resolve()
    const t = setTimeout(() => p.kill('SIGKILL'), 10_000)
    p.once('exit', () => {
      clearTimeout(t)
      resolve()
    })
    p.kill('SIGTERM')
  })
}

async function main(): Promise<void> {
  let config
  try {
    config = loadLocalConfig(file)
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`)
    process.exit(1)
  }
  const url = config.deployment.etcd.host[0] ?? 'http://127.0.0.1:2379'
  let etcd: ChildProcess | undefined
  if (!(await answers(url))) {
    const u = new URL(url)
    if (u.protocol !== 'http:' || !isLoopback(u.hostname)) {
      process.stderr.write(`npm start: etcd at ${url} does not answer and is not a local address; start it, or point deployment.etcd.host at a running etcd\n`)
      process.exit(1)
    }
    // APISIX_ETCD_DATA_DIR lets tests keep their etcd away from the user's data/etcd/
    const dataDir = process.env['APISIX_ETCD_DATA_DIR'] ?? join(root, 'data', 'etcd')
    mkdirSync(dataDir, { recursive: true, mode: 0o700 })
    const port = Number(u.port || 2379)
    const peer = `http://${u.hostname}:${port + 1}`
    process.stderr.write(`npm start: starting a local etcd on ${url} (data in ${dataDir})\n`)
    etcd = spawn('etcd', ['--data-dir', dataDir, '--name', 'local', '--listen-client-urls', url, '--advertise-client-urls', url,
      '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `local=${peer}`, '--logger', 'zap', '--log-level', 'error',
      // etcd's default 1.5 MiB per request is the admin API's body limit too; an ssl object with a
      // bigger client.crl is written to etcd directly (README, "Revoking a client certificate")
      '--max-request-bytes', String(LOCAL_ETCD_MAX_REQUEST_BYTES)],
    { stdio: ['ignore', 'ignore', 'inherit'] })
    etcd.on('error', (err) => {
      process.stderr.write(`npm start: cannot start etcd: ${err.message}\n`)
      process.exit(1)
    })
  }
  const gw = spawn(join(root, 'bin', 'apisix'), ['start', '-c', file], { stdio: 'inherit' })
  const forward = (sig: NodeJS.Signals): void => {
    gw.kill(sig)
  }
  process.on('SIGINT', forward)
  process.on('SIGTERM', forward)
  gw.on('exit', (code, signal) => {
    void (etcd ? stop(etcd) : Promise.resolve()).then(() => process.exit(code ?? (signal ? 1 : 0)))
  })
}

void main()
