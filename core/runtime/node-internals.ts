/**
 * Every place the gateway relies on Node.js beyond its documented API, in one module. Each one
 * checks the shape it expects and says what it found otherwise; t/unit/runtime/node-internals.test.ts
 * runs each against the runtime in use, so an upgrade that changes one fails there, by name,
 * rather than somewhere in the data plane. docs/architecture.md lists them and why.
 */
import { ServerResponse, type IncomingMessage, type Server } from 'node:http'
import type { Socket } from 'node:net'
import type { Http2Session, Http2Stream } from 'node:http2'
import type { Duplex } from 'node:stream'
import { executionAsyncResource } from 'node:async_hooks'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

/**
 * Node's own 'connection' listener of an HTTP server (the one that starts its HTTP/1.1 parser on a
 * socket), so that core/server/listeners.ts can put the fast path in front of it and still give
 * it the connections the fast path does not serve. Node documents emitting 'connection' on the
 * server, which would run every listener again; this takes the one Node registered at creation.
 * Undefined when the server does not hold exactly one listener.
 */
export function nodeConnectionListener(server: Server): ((socket: Socket) => void) | undefined {
  const own = server.listeners('connection') as ((socket: Socket) => void)[]
  return own.length === 1 ? own[0] : undefined
}

/**
 * A ServerResponse for a request Node handed over as an upgrade (it gives no response object
 * then): built on the request and bound to its socket with `assignSocket`, which Node uses
 * internally and does not document for this; the response then writes to that socket as any
 * other. Core/pipeline/handle.ts answers a refused upgrade with it.
 */
export function responseOnSocket(req: IncomingMessage, socket: Duplex): ServerResponse {
  const res = new ServerResponse(req)
  res.shouldKeepAlive = false
  res.assignSocket(socket as Socket)
  return res
}

/**
 * Stops the socket's handle reading from the kernel, for good. A handle sent to another process
 * stays open here until the receiver acknowledges it (later still when other hand-overs queue
 * before it), and Node keeps it reading meanwhile, the data thrown away or left in this side's
 * buffer: a client's next flight (its Finished and first request, sent once the adopting worker
 * answered) was lost so in about 1 of 200 hand-overs (measured: the server's handshake timed
 * out after 10 s). Node has no public call for this (`pause()` stops the stream, not the
 * handle), hence the handle's own `readStop()`. Its `reading` flag stays set on purpose: the
 * stream's read-ahead (`read(0)` on the next tick) restarts a handle whose flag is clear, which
 * lost one connection in about 1,500. The bytes read so far travel with the message.
 * Returns why it could not, or undefined.
 */
export function stopReading(socket: Socket): string | undefined {
  const handle = (socket as unknown as { _handle?: { readStop?: () => number } | null })._handle
  if (handle === null || handle === undefined) return 'the socket has no handle'
  if (typeof handle.readStop !== 'function') return "the socket's handle has no readStop()"
  handle.readStop()
  return undefined
}

/** Called with the byte count of each read and the buffer it was read into; `false` stops reading (as a full stream does). */
export type ReadCallback = (n: number, buf: Buffer) => boolean | void

/** Changes where a socket's reads go, once readInto() moved them to a buffer of the caller's. */
export type SetReadCallback = (cb: ReadCallback) => void

/**
 * Makes the socket read into `buf` and call `cb` with each read, instead of pushing a new Buffer
 * per read through its stream: net.Socket's documented `onread` option, set on a socket Node made
 * (a TLS server's socket takes no such option). On Node 24 a TLS socket backs every 'data' chunk
 * with a fresh 64 KiB ArrayBuffer, whatever the read's size (measured: a 27-byte request arrives
 * in a 65,536-byte buffer; 27 on Node 20, and plain TCP sockets still get their size); at keep-
 * alive rates that is gigabytes of external memory a second, and V8 answers it with a full
 * mark-compact every 150-250 ms per worker (--trace-gc, core/server/fast-http.ts). It uses the
 * handle's `useUserBuffer()` and the socket's `kBuffer`/`kBufferCb` symbols (found by their
 * description), which is what `onread` sets. The buffer is reused by the next read: `cb` copies
 * what it keeps. There is no way back to per-read Buffers: the returned function changes the
 * callback (core/server/fast-http.ts hands a socket it gives up to a callback that pushes copies
 * through the stream, as Node would). Returns why it could not, as a string.
 */
export function readInto(socket: Socket, buf: Buffer, cb: ReadCallback): SetReadCallback | string {
  const handle = (socket as unknown as { _handle?: { useUserBuffer?: (b: Buffer) => void } | null })._handle
  if (handle === null || handle === undefined) return 'the socket has no handle'
  if (typeof handle.useUserBuffer !== 'function') return "the socket's handle has no useUserBuffer()"
  const own = Object.getOwnPropertySymbols(socket)
  const kBuffer = own.find((s) => s.description === 'kBuffer')
  const kBufferCb = own.find((s) => s.description === 'kBufferCb')
  if (kBuffer === undefined || kBufferCb === undefined) return 'the socket has no kBuffer/kBufferCb symbols'
  const slots = socket as unknown as Record<symbol, unknown>
  if (slots[kBuffer] !== null || slots[kBufferCb] !== null) return 'the socket already reads into a buffer of its own'
  slots[kBuffer] = buf
  slots[kBufferCb] = cb
  handle.useUserBuffer(buf)
  return (next) => void (slots[kBufferCb] = next)
}

/**
 * The collector's entry point (`gc`, with V8's options: `type` minor or major, `flavor`
 * 'last-resort' for V8's memory-reducing full collection, which needs `execution: 'sync'`).
 */
export type Collect = (o?: { type: 'minor' | 'major'; execution?: 'sync' | 'async'; flavor?: 'regular' | 'last-resort' }) => unknown

/**
 * V8's `gc` without starting the process with --expose-gc (workers are forked by node:cluster,
 * and the flag would also reach every tool that reads execArgv): the flag is set at run time and
 * the function read from a fresh context, where V8 installs it. A reason when the runtime refuses.
 */
export function exposeGc(): Collect | string {
  try {
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as unknown
    return typeof gc === 'function' ? (gc as Collect) : 'a fresh context has no gc function after --expose-gc'
  } catch (err) {
    return `--expose-gc at run time failed: ${(err as Error).message}`
  }
}

/** An error Node's HTTP/2 binding raised for a session (its NghttpError): nghttp2's error number, and Node's code. */
export interface BindingError extends Error {
  readonly code: string
  /** nghttp2's (negative) error number: -904 flooded, -905 too many CONTINUATION frames, -902 a callback refused (Node's own limits) */
  readonly errno: number
}

const isBindingError = (e: unknown): e is BindingError =>
  e instanceof Error && typeof (e as BindingError).errno === 'number' && typeof (e as BindingError).code === 'string' && (e as BindingError).code.startsWith('ERR_HTTP2_')

/**
 * Lets `take` act on a protocol error that Node's HTTP/2 binding (nghttp2) detects on a session
 * (a SETTINGS, PING or CONTINUATION flood, too many refused streams or invalid frames) before
 * Node destroys the session. Node calls the session's own `destroy(err)` at once from the read
 * that found it (lib/internal/http2/core.js `onSessionInternalError`), and on TLS the GOAWAY that
 * destroy queues is lost: the native session drops it while its previous write to the TLS
 * stream is still completing (TLSWrap completes every write a tick later; a TCP stream at once),
 * and the socket's close then follows. Node has no event before that destroy, hence a
 * `destroy` of the session's own that asks `take` first: when it returns true the session is
 * left alone and the caller ends it later with the returned `destroy` (Node's own, bound).
 * Other destroys (ours, a socket error, a GOAWAY from the peer) go straight through.
 */
export function interceptBindingErrors(session: Http2Session, take: (err: BindingError) => boolean): (error?: Error | null, code?: number) => void {
  const own = session.destroy.bind(session) as (error?: Error | null, code?: number) => void
  ;(session as { destroy: (error?: Error | null, code?: number) => void }).destroy = (error, code) => {
    if (isBindingError(error) && take(error)) return
    own(error, code)
  }
  return own
}

/**
 * Bytes a socket's handle holds not yet handed to the kernel: on a TLS socket, the encrypted
 * output waiting behind a write in progress (TLSWrap's `writeQueueSize`, its BIO's pending
 * bytes); on TCP, libuv's write queue. 0 when the handle is gone or has no such count.
 */
export function handleQueuedBytes(socket: Socket): number {
  const handle = (socket as unknown as { _handle?: { writeQueueSize?: unknown } | null })._handle
  const n = handle?.writeQueueSize
  return typeof n === 'number' ? n : 0
}

/**
 * Resets an HTTP/2 stream with `code` (RST_STREAM) and nothing before it. The documented
 * `stream.close(code)` ends the writable side first: a stream whose response headers went out
 * sends END_STREAM, and a client whose request had ended then holds a complete exchange and
 * drops the reset (measured: the client saw END_STREAM and rstCode 0). The native handle's
 * `rstStream(code)` (behind the `kHandle` symbol, as Node's own submitRstStream calls it) sends
 * the frame alone; the stream is then destroyed, which sends nothing more for a closed stream.
 * Returns why it could not (the caller then destroys the stream: INTERNAL_ERROR), or undefined.
 */
export function resetStream(stream: Http2Stream, code: number): string | undefined {
  if (stream.destroyed || stream.closed) return 'the stream is closed already'
  const key = Object.getOwnPropertySymbols(stream).find((s) => s.description === 'kHandle')
  const handle = key === undefined ? undefined : (stream as unknown as Record<symbol, { rstStream?: (code: number) => void } | undefined>)[key]
  if (typeof handle?.rstStream !== 'function') return 'the stream has no kHandle with rstStream()'
  handle.rstStream(code)
  stream.destroy()
  return undefined
}

/** The queue entry pinTickShape keeps (one per process: its hidden class is what matters). */
let pinnedTick: object | undefined

/**
 * Keeps one of `process.nextTick`'s queue entries (its TickObject) reachable for the life of the
 * process, so that V8 never drops the hidden-class transitions its object literal follows from
 * the plain-object root map (transitions are weak: a GC at a moment when no entry is alive
 * clears them). Start-up fills that root map's transition list: ajv's code generation and
 * protobufjs (etcd3) make thousands of short-lived objects whose first key differs. When
 * nextTick then meets a full list with its own transitions gone, every entry gets a hidden class
 * of its own, its inline caches go megamorphic and stay so: measured in a worker under h2load,
 * nextTick at 4-6 us of CPU per proxied request against 1 us in a plain Node process with the
 * same traffic (and 1 us with the entry kept); in a small probe (3,000 retained one-key objects,
 * then a GC), 1.8-3.5 us per call against 56-113 ns with the entry kept.
 *
 * The entry is the running resource inside a nextTick callback (`executionAsyncResource()`, no
 * async_hooks hook needed), reachable from the moment the tick is queued.
 */
export function pinTickShape(): void {
  if (pinnedTick !== undefined) return
  process.nextTick(() => {
    pinnedTick = executionAsyncResource()
  })
}

/** What pinTickShape kept: the entry's own keys (tests). */
export function pinnedTickKeys(): string[] | undefined {
  return pinnedTick === undefined ? undefined : [...Object.getOwnPropertySymbols(pinnedTick).map((x) => x.description ?? ''), ...Object.keys(pinnedTick)]
}
