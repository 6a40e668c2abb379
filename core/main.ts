import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Socket } from 'node:net'
import { loadLocalConfig, tlsDefaults } from './config/local.js'
import { createStore } from './config/store.js'
import { createEtcdClient } from './etcd/client.js'
import { createLogger } from './log.js'
import { deriveGeneration, type BuildDeps } from './generation/derive.js'
import { createPlanCache } from './generation/http-plan.js'
import { emptyGeneration } from './generation/generation.js'
import { createHandler } from './pipeline/handle.js'
import { createHttpServer, httpServerOptions, serveWithNode, startHttpListeners, type PlainListeners } from './server/listeners.js'
import { createFastHttp } from './server/fast-http.js'
import { createH2, routePlain } from './server/h2.js'
import type { HttpResponse, RequestHead } from './pipeline/http.js'
import { drainWorker } from './server/drain.js'
import { nginxTimeMs } from './config/time.js'
import { buildDecode } from './config/decode-all.js'
import { createPools, upstreamCa } from './proxy/pools.js'
import { missingRegexpFlags, type ConnectionKind, type WorkerMessage } from './server/workers.js'
import { sendToPrimary, workerInbox } from './server/ipc.js'
import { randomBytes } from 'node:crypto'
import { createPolicyCache } from './tls/contexts.js'
import { decodeSecrets, firstSecrets } from './tls/ticket-secrets.js'
import { startTlsFront, type TlsFront } from './server/tls-front.js'
import { workerSlot } from './server/worker-balance.js'
import { startOps } from './ops/worker.js'
import { heapCare } from './ops/heap.js'
import { pinTickShape } from './runtime/node-internals.js'
import { createClientCertSource } from './pipeline/client-cert-source.js'

const send = sendToPrimary

/** The data-plane entry of one worker: store → listeners → ready; drains on the primary's word. */
export async function runWorker(): Promise<void> {
  // before start-up's config load and schema compilation crowd V8's plain-object root map
  pinTickShape()
  const missing = missingRegexpFlags(process.execArgv)
  if (missing.length > 0) {
    send({ type: 'fatal', message: `data-plane worker started without ${missing.join(' ')}: a backtracking regexp could hold it for hours` })
    return
  }
  const file = process.env['APISIX_CONF'] ?? 'conf/config.yaml'
  const config = loadLocalConfig(file)
  const log = createLogger('worker')
  const ops = startOps({ config, log })
  const etcd = createEtcdClient(config)
  // the primary's ticket secrets: every worker derives the same keys; rotated over IPC
  let tickets = decodeSecrets(process.env['APISIX_TICKET_SECRET'] ?? '') ?? firstSecrets(randomBytes(48))
  const inbox = workerInbox()
  inbox.on('tickets', (m) => (tickets = decodeSecrets(m.secrets) ?? tickets))
  inbox.on('reopen', () => ops.reopenLog())
  // nginx's signal for log rotation, also when sent to the whole process group; without a
  // listener, Node answers SIGUSR1 by opening its inspector on 127.0.0.1:9229 (measured)
  process.on('SIGUSR1', () => ops.reopenLog())
  const policies = createPolicyCache({
    keyring: config.apisix.data_encryption.keyring,
    tickets: () => tickets,
    onBuildError: (id, reason) => log.error({ ssl_id: id, reason }, 'ssl object cannot be served; handshakes for its SNIs fail'),
    onStaplingError: (id, reason) => log.warn({ ssl_id: id, reason }, 'OCSP response for stapling not fetched; handshakes go on without a staple'),
    http2: config.apisix.enable_http2,
    tls: tlsDefaults(config),
  })
  const ca = upstreamCa(file, config)
  const pools = createPools(ca === undefined ? {} : { ca })
  // what building a generation keeps from one to the next, this worker's own
  const build: BuildDeps = { policies, plans: createPlanCache(), consumerCerts: new WeakMap(), keyring: config.apisix.data_encryption.keyring }
  const heap = heapCare()
  const store = createStore({
    etcd,
    prefix: config.deployment.etcd.prefix,
    decode: buildDecode(),
    derive: (snapshot, prev, change) => deriveGeneration(snapshot, prev, change, build),
    initial: emptyGeneration(),
    log,
    // pools no generation names any more close once their in-flight requests finish
    onPublish: (g, prev) => {
      pools.retain(g.http.poolKeys)
      ops.storeHooks.onPublish(g, prev)
    },
    onRejected: ops.storeHooks.onRejected,
    afterPage: heap.minor,
  })
  ops.attach(store.state)
  // the first load leaves its garbage and a young generation grown to its maximum behind: one
  // memory-reducing full collection (core/ops/heap.ts) before the worker calls itself ready, so
  // no request waits on it and a ready worker holds only what it keeps
  const settled = store.ready.then(() => heap.major())
  let ready = false
  void settled.then(() => (ready = true))
  // the primary holds back the admin's own listing of etcd until every worker answers this
  inbox.answer('ready', () => settled.then(() => true))
  let inflight = 0
  let draining = false
  const upgraded = new Set<Duplex>()
  const handle = createHandler({
    current: store.current,
    isReady: () => ready,
    readyError: () => (store.state().reachable ? 'configuration not loaded yet' : 'etcd has not been reached yet'),
    pools,
    onRequest: ops.onRequest,
    certSource: createClientCertSource(config.apisix.ssl.client_cert_header),
    clientBodyTimeoutMs: nginxTimeMs(config.nginx_config.http.client_body_timeout),
    sendTimeoutMs: nginxTimeMs(config.nginx_config.http.send_timeout),
  })
  const done = (): void => void inflight--
  const onRequest = (req: RequestHead, res: HttpResponse): void => {
    inflight++
    res.once('close', done)
    handle(req, res)
  }
  const server = createHttpServer(onRequest)
  // HTTP/2 (apisix.enable_http2): TLS connections whose ALPN chose h2, plain ones that open with the preface
  const h2 = config.apisix.enable_http2
    ? createH2({ handler: onRequest, sendTimeoutMs: nginxTimeMs(config.nginx_config.http.send_timeout), idleTimeoutMs: httpServerOptions.keepAliveTimeout })
    : undefined
  const toNode = (socket: Socket, pending: Buffer | null): void => {
    serveWithNode(server, socket)
    if (pending !== null) socket.emit('data', pending)
  }
  // every connection starts on the fast HTTP/1.1 path; the first request outside its subset
  // moves the connection to Node's HTTP server (or, with the h2c preface, to HTTP/2), with the
  // bytes read and not served yet
  const fast = createFastHttp({
    handler: onRequest,
    fallback: h2 ? (socket, pending) => routePlain(socket, pending, (s, p) => h2.serve(s, p), toNode) : toNode,
    headersTimeoutMs: httpServerOptions.headersTimeout,
    keepAliveTimeoutMs: httpServerOptions.keepAliveTimeout,
    maxHeaderSize: httpServerOptions.maxHeaderSize,
  })
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    inflight++
    upgraded.add(socket)
    socket.once('close', () => {
      inflight--
      upgraded.delete(socket)
    })
    handle.upgrade(req, socket, head)
  })
  let plain: PlainListeners | undefined
  // this worker's slot in the connection-balance table, and its way to hand a TLS connection over
  const balance = workerSlot(process.env)
  const handOver = (kind: ConnectionKind, socket: Socket, hello: Buffer, weight: number): boolean => {
    if (!process.connected || !process.send) return false
    // a callback, so that a failed send is no 'error' event on process; on success the socket
    // object is left alone (its handle went with the message, and destroying it would count its
    // close twice in the listener's connection count)
    process.send({ type: 'handover', kind, hello: hello.toString('base64'), weight } satisfies WorkerMessage, socket, { keepOpen: false }, (err: Error | null) => {
      if (err) socket.destroy()
    })
    return true
  }
  let tlsFront: TlsFront | undefined
  // a worker forked to replace one that died listens once its first load is in (at most 10 s):
  // the other workers serve meanwhile, and node:cluster would hand it new connections it could
  // only answer 503 (seen in the SIGKILL fault test); the first workers listen at once, so
  // /apisix/status/ready answers while they load
  let drainAsked = false
  if (process.env['APISIX_WORKER_REPLACES'] === '1') {
    const off = inbox.on('drain', () => (drainAsked = true))
    await Promise.race([settled, new Promise((r) => setTimeout(r, 10_000).unref())])
    off()
  }
  try {
    plain = await startHttpListeners(config, server, { serve: (s) => fast.serve(s), ...(balance ? { balance: { balance, handOver: (s: Socket) => handOver('http', s, Buffer.alloc(0), 1) } } : {}) })
    if (config.apisix.ssl.enable) tlsFront = await startTlsFront({ config, httpServer: server, current: store.current, log, observe: ops, serveHttp: (s) => (h2 && s.alpnProtocol === 'h2' ? h2.serve(s) : fast.serve(s)), ...(balance ? { balance, handOver: (s: Socket, hello: Buffer, weight: number) => handOver('tls', s, hello, weight) } : {}) })
  } catch (err) {
    send({ type: 'fatal', message: (err as Error).message })
    return
  }
  balance?.setServing(true)
  inbox.on('adopt', (m, handle) => {
    const socket = handle as Socket | undefined
    if (!socket) return
    if (!draining && m.kind === 'http' && plain) plain.adopt(socket)
    else if (!draining && m.kind === 'tls' && tlsFront) tlsFront.adopt(socket, Buffer.from(m.hello, 'base64'), m.weight)
    else socket.destroy()
  })
  send({ type: 'listening' })

  const onDrain = (): void => {
    if (draining) return
    draining = true
    drainWorker({
      boundMs: nginxTimeMs(config.nginx_config.worker_shutdown_timeout),
      log,
      target: {
        stopAccepting: () => {
          balance?.setServing(false)
          plain?.close()
          tlsFront?.close()
        },
        closeIdle: () => {
          server.closeIdleConnections()
          fast.closeIdle()
          h2?.closeIdle()
        },
        cutAll: () => {
          server.closeAllConnections()
          fast.cutAll()
          h2?.cutAll()
          for (const s of upgraded) s.destroy()
        },
        inflight: () => inflight,
        cleanup: () => Promise.allSettled([store.close(), pools.close(), ops.close()]).finally(() => etcd.close()),
      },
      exit: () => {
        log.flush()
        process.exit(0)
      },
    })
  }
  inbox.on('drain', onDrain)
  if (drainAsked) onDrain()
  process.on('disconnect', () => process.exit(0))
}
