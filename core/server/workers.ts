import cluster, { type Worker } from 'node:cluster'
import { availableParallelism } from 'node:os'
import { randomBytes } from 'node:crypto'
import type { Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import type { Logger } from '../log.js'
import type { LocalConfig } from '../config/local-schema.js'
import { nginxTimeMs } from '../config/time.js'
import { BalanceTable, TABLE_FD } from './worker-balance.js'
import { stopReading } from '../runtime/node-internals.js'
import { TICKET_ROTATE_MS, encodeSecrets, firstSecrets, rotateSecrets } from '../tls/ticket-secrets.js'

/** Which listener a handed-over connection came from. */
export type ConnectionKind = 'tls' | 'http'

/** Messages a data-plane worker sends to the primary. */
export type WorkerMessage =
  | { readonly type: 'listening' }
  | { readonly type: 'fatal'; readonly message: string }
  | { readonly type: 'drained' }
  | { readonly type: 'reply'; readonly id: number; readonly data: unknown }
  /** a connection (the handle) goes to another worker; `hello`: what was read of it (a TLS ClientHello), base64; `weight`: its weight in the balance table */
  | { readonly type: 'handover'; readonly kind: ConnectionKind; readonly hello: string; readonly weight: number }

/** Messages the primary sends to a worker. */
export type PrimaryMessage =
  | { readonly type: 'drain' }
  | { readonly type: 'ask'; readonly id: number; readonly what: string }
  /** new session-ticket secrets (encodeSecrets' text): current and previous */
  | { readonly type: 'tickets'; readonly secrets: string }
  /** reopen the access log by name (log rotation) */
  | { readonly type: 'reopen' }
  /** serve this connection (the handle) another worker handed over; `kind`, `hello` and `weight` as in 'handover' */
  | { readonly type: 'adopt'; readonly kind: ConnectionKind; readonly hello: string; readonly weight: number }

export interface Workers {
  readonly count: number
  /** stop accepting, let in-flight requests finish, wait for every worker to exit */
  drain(): Promise<void>
  /** called once when a worker cannot start (port in use, bad listen address) */
  onFatal(cb: (message: string) => void): void
  /** asks every live worker (e.g. 'metrics') and collects their replies within timeoutMs */
  ask(what: string, timeoutMs?: number): Promise<unknown[]>
  /** tells every live worker to reopen its access log (SIGUSR1) */
  reopenLogs(): void
}

/** V8 flags every worker runs with (DESIGN.md §4): a backtracking regexp falls back to the linear-time engine. */
export const REGEXP_FLAGS = ['--enable-experimental-regexp-engine', '--enable-experimental-regexp-engine-on-excessive-backtracks'] as const

/**
 * V8 flags for the workers' heap (docs/runtime-node24.md, "allocation-site pretenuring"): V8's
 * allocation-site pretenuring decides at some scavenges that a site's objects should be born in
 * the old space; an HTTP/2 proxy's per-request objects, alive across a scavenge only while their
 * stream is, then die in the old space. Measured on a 1-worker gateway under h2load (fresh starts
 * alternating): promotion 0.71-0.73 against 0.69-1.36 MB per scavenge, CPU per request 0.84x.
 */
export const HEAP_FLAGS = ['--no-allocation-site-pretenuring'] as const

/** The regexp flags missing from a process's execArgv. */
export const missingRegexpFlags = (execArgv: readonly string[]): string[] => REGEXP_FLAGS.filter((f) => !execArgv.includes(f))

/** Number of workers for `apisix.workers` (auto = one per core). */
export const workerCount = (c: LocalConfig): number => (c.apisix.workers === 'auto' ? availableParallelism() : c.apisix.workers)

/**
 * Forks the data-plane workers (node:cluster shares the listeners); resolves when all listen.
 * A worker that dies later is replaced (at most 10 restarts a minute, then the primary gives up).
 * A worker that cannot listen makes startup reject with its one-line reason. Every `rotateMs`
 * the primary replaces the session-ticket secret and sends it to the workers (the previous one
 * stays accepted); a worker forked later gets both in its environment.
 */
export async function startWorkers(o: { config: LocalConfig; configFile: string; ticketSecret: Buffer; log: Logger; rotateMs?: number }): Promise<Workers> {
  const n = workerCount(o.config)
  // every worker accepts from the shared sockets itself (no IPC hand-off per connection); the
  // balance table evens out bursts (core/server/worker-balance.ts)
  cluster.schedulingPolicy = cluster.SCHED_NONE
  const table = new BalanceTable(n)
  const stdio: (number | 'inherit' | 'ipc')[] = ['inherit', 'inherit', 'inherit', 'ipc']
  stdio[TABLE_FD] = table.fd
  cluster.setupPrimary({
    exec: fileURLToPath(new URL('../worker-entry.js', import.meta.url)),
    // the flags even when the primary runs without them (`node dist/bin/cli.js start`)
    execArgv: [...process.execArgv, ...missingRegexpFlags(process.execArgv), ...HEAP_FLAGS.filter((f) => !process.execArgv.includes(f))],
    stdio,
  })
  let secrets = firstSecrets(o.ticketSecret)
  const env = (): Record<string, string> => ({ APISIX_CONF: o.configFile, APISIX_TICKET_SECRET: encodeSecrets(secrets) })
  let draining = false
  let fatal: ((m: string) => void) | undefined
  let pendingFatal: string | undefined
  const restarts: number[] = []
  const live = new Set<Worker>()
  let nextAsk = 1
  const asks = new Map<number, (worker: Worker, data: unknown) => void>()

  /** the worker serving each balance-table slot */
  const bySlot: (Worker | undefined)[] = new Array<Worker | undefined>(n).fill(undefined)
  const handOver = (from: number, m: { kind: ConnectionKind; hello: string; weight: number }, handle: unknown): void => {
    const socket = handle as Socket | undefined
    if (!socket) return
    // Node made it a reading socket: nothing is read here (what the worker read came in the message)
    stopReading(socket)
    const weight = Number.isInteger(m.weight) && m.weight > 0 ? m.weight : 1
    const to = bySlot[table.route(from, weight)]
    if (!to?.isConnected()) return void socket.destroy()
    // the callback (also on failure) releases the primary's socket object; the handle went along
    to.send({ type: 'adopt', kind: m.kind, hello: m.hello, weight } satisfies PrimaryMessage, socket, { keepOpen: false }, () => socket.destroy())
  }
  /**
   * Forks the worker for balance-table `slot`. `replacing`: it replaces one that died, and
   * listens only once it has loaded (core/main.ts).
   */
  const fork = (slot: number, replacing = false): Worker => {
    const base = { ...env(), APISIX_BALANCE: `${slot}/${n}` }
    const w = cluster.fork(replacing ? { ...base, APISIX_WORKER_REPLACES: '1' } : base)
    live.add(w)
    bySlot[slot] = w
    w.on('message', (m: WorkerMessage, handle: unknown) => {
      if (m.type === 'fatal') {
        if (fatal) fatal(m.message)
        else pendingFatal = m.message
      } else if (m.type === 'reply') asks.get(m.id)?.(w, m.data)
      else if (m.type === 'handover') handOver(slot, m, handle)
    })
    w.on('exit', (code, signal) => {
      live.delete(w)
      if (bySlot[slot] === w) bySlot[slot] = undefined
      table.reset(slot)
      if (draining) return
      o.log.error({ pid: w.process.pid, code, signal }, 'worker exited; starting a new one')
      const now = Date.now()
      restarts.push(now)
      while (restarts.length && (restarts[0] ?? 0) < now - 60_000) restarts.shift()
      if (restarts.length > 10) {
        const m = 'data-plane workers keep crashing (more than 10 restarts in a minute); giving up'
        if (fatal) fatal(m)
        else pendingFatal = m
        return
      }
      fork(slot, true)
    })
    return w
  }

  const started = Array.from({ length: n }, (_, slot) => fork(slot))
  await new Promise<void>((resolve, reject) => {
    let listening = 0
    for (const w of started) {
      w.on('message', (m: WorkerMessage) => {
        if (m.type === 'listening' && ++listening === n) resolve()
        if (m.type === 'fatal') reject(new Error(m.message))
      })
      w.once('exit', (code) => reject(new Error(`data-plane worker exited during startup (code ${String(code)})`)))
    }
  }).catch(async (err: Error) => {
    draining = true
    for (const w of live) w.process.kill('SIGKILL')
    throw err
  })

  const rotation = setInterval(() => {
    secrets = rotateSecrets(secrets, randomBytes(48))
    const m: PrimaryMessage = { type: 'tickets', secrets: encodeSecrets(secrets) }
    for (const w of live) if (w.isConnected()) w.send(m)
  }, o.rotateMs ?? TICKET_ROTATE_MS)
  rotation.unref()

  return {
    count: n,
    async drain() {
      draining = true
      clearInterval(rotation)
      const exits = [...live].map((w) => new Promise<void>((r) => (w.isDead() ? r() : w.once('exit', () => r()))))
      for (const w of live) if (w.isConnected()) w.send({ type: 'drain' } satisfies PrimaryMessage)
      // a worker cuts its requests at the bound and exits; one that hangs past it is killed
      const hard = setTimeout(() => {
        for (const w of live) {
          o.log.error({ pid: w.process.pid }, 'worker still running after the drain bound; killing it')
          w.process.kill('SIGKILL')
        }
      }, nginxTimeMs(o.config.nginx_config.worker_shutdown_timeout) + 10_000)
      await Promise.all(exits)
      clearTimeout(hard)
    },
    reopenLogs() {
      for (const w of live) if (w.isConnected()) w.send({ type: 'reopen' } satisfies PrimaryMessage)
    },
    onFatal(cb) {
      fatal = cb
      if (pendingFatal !== undefined) cb(pendingFatal)
    },
    async ask(what, timeoutMs = 2000) {
      const id = nextAsk++
      const targets = [...live].filter((w) => w.isConnected())
      const replies: unknown[] = []
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs)
        const seen = new Set<Worker>()
        asks.set(id, (w, data) => {
          if (seen.has(w)) return
          seen.add(w)
          replies.push(data)
          if (seen.size === targets.length) {
            clearTimeout(timer)
            resolve()
          }
        })
        if (targets.length === 0) resolve()
        for (const w of targets) w.send({ type: 'ask', id, what } satisfies PrimaryMessage)
      })
      asks.delete(id)
      return replies
    },
  }
}
