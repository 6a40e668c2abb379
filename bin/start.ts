import { randomBytes } from 'node:crypto'
import { resolve } from 'node:path'
import { checkAdminKeySafety, loadLocalConfig } from '../core/config/local.js'
import { createEtcdClient } from '../core/etcd/client.js'
import { upstreamCa } from '../core/proxy/pools.js'
import { componentLogger, createRootLogger } from '../core/log.js'
import { waitForEtcd } from '../core/etcd/wait.js'
import { startWorkers, type Workers } from '../core/server/workers.js'
import { collectMetrics, startMetricsServer } from '../core/server/metrics-server.js'
import { startAdmin } from '../admin/server.js'

/**
 * `bin/apisix start`: load and check the config, wait for etcd (up to startup_retry seconds),
 * start the admin API, fork the data-plane workers; SIGINT/SIGTERM → stop accepting, drain, exit 0.
 * Any startup failure throws a GatewayError whose message is the one line the CLI prints.
 */
export async function start(file: string): Promise<void> {
  const config = loadLocalConfig(file)
  checkAdminKeySafety(file, config)
  // read again by each worker; checked here so a bad path stops the start before any worker runs
  upstreamCa(file, config)
  const root = createRootLogger()
  const log = componentLogger(root, 'primary')
  const etcd = createEtcdClient(config)
  // handlers first: a signal during start-up must not kill the primary under workers already serving
  let onSignal: (signal: string) => void = (signal) => {
    log.info({ signal }, 'stopping before any worker started')
    etcd.close()
    log.flush()
    process.exit(0)
  }
  process.on('SIGINT', () => onSignal('SIGINT'))
  process.on('SIGTERM', () => onSignal('SIGTERM'))
  // SIGUSR1 (log rotation, as for nginx) reopens the workers' access logs; a listener from the
  // start, because without one Node opens its inspector on 127.0.0.1:9229 (measured)
  let onReopen: () => void = () => log.info('SIGUSR1 before the workers started: nothing to reopen')
  process.on('SIGUSR1', () => onReopen())
  try {
    await waitForEtcd(etcd, config)
  } catch (err) {
    etcd.close()
    throw err
  }
  // the admin's shared-SNI index lists every ssl object: it waits until the workers have loaded
  // theirs, so etcd serves two listings at a time during start-up instead of three
  let workersLoaded: () => void = () => undefined
  const indexAfter = new Promise<void>((r) => (workersLoaded = r))
  // the admin (the UI's Live TLS page) reads the same merged counters as a scrape, over the same
  // IPC: the metrics listener is another origin, and may be off or bound elsewhere
  const scraped: { workers?: Workers } = {}
  const adminLog = componentLogger(root, 'admin')
  const admin = await startAdmin({ config, etcd, log: adminLog, indexAfter, metrics: () => collectMetrics(scraped, adminLog) })
  // bound before the workers start, so a port in use fails start-up like the other ports
  const metrics = await startMetricsServer(config, scraped, componentLogger(root, 'metrics')).catch(async (err: unknown) => {
    await admin.close()
    etcd.close()
    throw err
  })
  let workers: Awaited<ReturnType<typeof startWorkers>>
  // glibc raises its mmap threshold after the first large buffer is freed, so the ~5 MB etcd pages
  // of a worker's first load are then carved from its heap, which it keeps (~20 MB a worker at
  // 100k ssl objects); with a fixed 1 MiB threshold larger buffers are mapped and given back when
  // freed. Workers inherit it from this environment; an operator's own value wins.
  process.env['MALLOC_MMAP_THRESHOLD_'] ??= String(2 ** 20)
  // a signal while workers fork is kept, and drains them once they all listen
  let pending: string | undefined
  onSignal = (signal) => (pending ??= signal)
  try {
    workers = await startWorkers({ config, configFile: resolve(file), ticketSecret: randomBytes(48), log })
    scraped.workers = workers
  } catch (err) {
    await metrics?.close()
    await admin.close()
    etcd.close()
    throw err
  }
  log.info({ admin: admin.address, workers: workers.count }, 'gateway started')
  const started = workers
  onReopen = () => {
    log.info('SIGUSR1: the workers reopen their access logs')
    started.reopenLogs()
  }
  // a worker replaced during start-up never answers: the index then starts after the bound
  void workers.ask('ready', 60_000).finally(workersLoaded)

  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) return
    stopping = true
    const since = Date.now()
    log.info({ signal }, 'stopping: draining in-flight requests')
    void (async () => {
      await Promise.allSettled([workers.drain(), admin.close(), metrics?.close()])
      etcd.close()
      log.info({ ms: Date.now() - since }, 'stopped')
      log.flush()
      process.exit(0)
    })()
  }
  onSignal = stop
  if (pending !== undefined) stop(pending)
  workers.onFatal((message) => {
    if (stopping) return
    stopping = true
    process.stderr.write(`${message}\n`)
    void Promise.allSettled([workers.drain(), admin.close()]).then(() => process.exit(1))
  })
}
