/**
 * The access log (`apisix.access_log`): one JSON object per request and line, written through
 * pino's asynchronous destination (sonic-boom). A write only appends to an in-memory buffer;
 * the file is written in the background, so a request never waits for the disk. Lines go out in
 * blocks of FLUSH_BYTES, or after FLUSH_MS when fewer arrive (nginx's `access_log … buffer=
 * flush=`). When the disk falls more than MAX_BUFFERED_BYTES behind, further lines are dropped
 * and counted rather than held without bound.
 */
import { closeSync, mkdirSync, openSync } from 'node:fs'
import { dirname, isAbsolute, resolve } from 'node:path'
import { pino } from 'pino'
import { GatewayError } from './errors.js'

/** One request, with CONTRACT.md's fields; null where a fact does not apply. */
export interface AccessLogEntry {
  /** ISO 8601, e.g. `new Date(start).toISOString()`. */
  readonly time: string
  readonly remote_addr: string
  readonly method: string
  readonly uri: string
  readonly status: number
  readonly route_id: string | null
  /** The upstream node as host:port, null when none was contacted. */
  readonly upstream: string | null
  readonly latency_ms: number
  readonly upstream_latency_ms: number | null
  readonly sni: string | null
  readonly tls_version: string | null
  /** `SUCCESS`, `FAILED:reason` or `NONE`, like nginx's $ssl_client_verify. */
  readonly client_verify: string
  readonly client_s_dn: string | null
  readonly client_serial: string | null
  readonly consumer: string | null
  /** `1.0`, `1.1` or `2` */
  readonly http_version: string
  /** on gRPC routes only: the upstream's grpc-status, null when none came */
  readonly grpc_status?: string | null
}

/** `apisix.access_log` from config.yaml. */
export interface AccessLogConfig {
  readonly enable: boolean
  /** A file, or "-" for stdout; a relative path is taken from `baseDir`. */
  readonly path: string
}

/** An open access log. */
export interface AccessLog {
  /** Appends one line; never blocks and never throws. */
  write(entry: AccessLogEntry): void
  /** Lines dropped because the disk fell too far behind (or the file could not be opened). */
  dropped(): number
  /** Reopens the file by name, for log rotation (SIGUSR1 in the caller). */
  reopen(): void
  /** Writes out everything buffered, then closes the file (stdout stays open). */
  close(): Promise<void>
}

/** Lines beyond this many buffered bytes are dropped. */
export const MAX_BUFFERED_BYTES = 16 * 1024 * 1024
/**
 * Lines are handed to the file in blocks of this many bytes (sonic-boom's minLength; its maximum
 * is one write of 16 KiB). Without it every line started its own background write: in a
 * loopback ping-pong with one line per round trip (Node 24), 25–32 µs of CPU per round trip
 * against 18–20 without a log; with 8 KiB blocks 21–23 µs.
 */
export const FLUSH_BYTES = 8192
/** A line waits at most this long for its block. */
export const FLUSH_MS = 1000

const disabled: AccessLog = { write: () => {}, dropped: () => 0, reopen: () => {}, close: async () => {} }

/** What JSON.stringify escapes in a string: the quote, the backslash, control bytes, and (lone) surrogates. */
const NEEDS_ESCAPE = /["\\\x00-\x1f\ud800-\udfff]/

/** A string as JSON: quoted as is when nothing in it needs escaping (nearly every value), else JSON.stringify's. */
const str = (v: string): string => (NEEDS_ESCAPE.test(v) ? JSON.stringify(v) : `"${v}"`)
const strOrNull = (v: string | null): string => (v === null ? 'null' : str(v))
/** A number as JSON (NaN and infinities are null there). */
const num = (v: number): string => (Number.isFinite(v) ? String(v) : 'null')

/**
 * The line written for one entry: the contract's fields in a fixed order, and nothing else. The
 * same text as JSON.stringify of those fields (t/unit/access-log.test.ts compares them), written
 * out field by field: no object built and walked per request (about 3x faster per line).
 */
export function formatAccessLine(e: AccessLogEntry): string {
  const grpc = e.grpc_status === undefined ? '' : `,"grpc_status":${strOrNull(e.grpc_status)}`
  return (
    `{"time":${str(e.time)},"remote_addr":${str(e.remote_addr)},"method":${str(e.method)},"uri":${str(e.uri)},"status":${num(e.status)},` +
    `"route_id":${strOrNull(e.route_id)},"upstream":${strOrNull(e.upstream)},"latency_ms":${num(e.latency_ms)},` +
    `"upstream_latency_ms":${e.upstream_latency_ms === null ? 'null' : num(e.upstream_latency_ms)},"sni":${strOrNull(e.sni)},` +
    `"tls_version":${strOrNull(e.tls_version)},"client_verify":${str(e.client_verify)},"client_s_dn":${strOrNull(e.client_s_dn)},` +
    `"client_serial":${strOrNull(e.client_serial)},"consumer":${strOrNull(e.consumer)},"http_version":${str(e.http_version)}${grpc}}\n`
  )
}

/**
 * Opens the access log described by `conf` (a no-op when disabled). Relative paths resolve
 * against `baseDir` (the directory bin/apisix runs from); missing directories are created.
 * A file that cannot be opened throws GW_ACCESS_LOG_OPEN here, at startup (as nginx refuses to
 * start); later I/O errors go to `onError` and never reach the request path.
 */
export function createAccessLog(conf: AccessLogConfig, baseDir: string, onError: (err: Error) => void = () => {}): AccessLog {
  if (!conf.enable) return disabled
  const toStdout = conf.path === '-'
  const file = isAbsolute(conf.path) ? conf.path : resolve(baseDir, conf.path)
  if (!toStdout) checkWritable(file)
  // Buffer mode: in string mode sonic-boom re-measures its whole pending chunk on every write
  // (about 3x the cost per line, measured here).
  const common = { sync: false, maxLength: MAX_BUFFERED_BYTES, contentMode: 'buffer', minLength: FLUSH_BYTES } as const
  const dest = toStdout ? pino.destination({ ...common, dest: 1 }) : pino.destination({ ...common, dest: file, mkdir: true, append: true })
  let dropped = 0
  let failed = false
  let closed = false
  let unflushed = false
  const flusher = setInterval(() => {
    if (!unflushed || closed || failed) return
    unflushed = false
    try {
      dest.flush()
    } catch (err) {
      onError(err as Error)
    }
  }, FLUSH_MS)
  flusher.unref()
  dest.on('drop', () => void dropped++)
  dest.on('error', (err: Error) => {
    failed = true
    onError(err)
  })
  return {
    write(entry) {
      if (closed) return void dropped++
      try {
        // In buffer mode sonic-boom takes Buffers; its typings only declare string.
        dest.write(Buffer.from(formatAccessLine(entry)) as unknown as string)
        unflushed = true
      } catch (err) {
        // sonic-boom throws only once destroyed; a request must not see it.
        dropped++
        onError(err as Error)
      }
    },
    dropped: () => dropped,
    reopen() {
      if (!toStdout && !closed) dest.reopen()
    },
    close() {
      if (closed) return Promise.resolve()
      closed = true
      clearInterval(flusher)
      return new Promise<void>((done) => {
        if (failed) {
          dest.destroy()
          return done()
        }
        dest.once('close', () => done())
        dest.once('error', () => done())
        dest.end()
      })
    },
  }
}

// Opening once synchronously turns a bad path into a startup error. It also matters for
// sonic-boom: a destination whose first open failed makes pino's exit hook throw.
function checkWritable(file: string): void {
  try {
    mkdirSync(dirname(file), { recursive: true })
    closeSync(openSync(file, 'a'))
  } catch (err) {
    throw new GatewayError('GW_ACCESS_LOG_OPEN', [file, (err as NodeJS.ErrnoException).code ?? String(err)], { cause: err })
  }
}
