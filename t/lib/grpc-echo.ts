/**
 * gRPC for tests with @grpc/grpc-js: the echo service of t/fixtures/grpc/echo.proto as a real
 * upstream server (h2c, or TLS that requires a client certificate), and its client.
 */
import { fileURLToPath } from 'node:url'
import { join, dirname } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import * as loader from '@grpc/proto-loader'
import type { Test } from 'tap'

const PROTO = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'grpc', 'echo.proto')

export interface Msg {
  text: string
  n: number
}

/** The generated service definition and client constructor. */
export function echoPackage(): { service: grpc.ServiceDefinition; Client: grpc.ServiceClientConstructor } {
  const def = loader.loadSync(PROTO, { keepCase: true, defaults: true })
  const pkg = grpc.loadPackageDefinition(def) as unknown as { echo: { Echo: grpc.ServiceClientConstructor } }
  return { service: pkg.echo.Echo.service, Client: pkg.echo.Echo }
}

/** What the upstream saw of each call: the metadata (as headers) and whether a deadline came. */
export interface SeenCall {
  readonly method: string
  readonly metadata: Record<string, unknown>
  readonly deadline: boolean
  cancelled: boolean
}

export interface EchoServer {
  readonly port: number
  readonly seen: SeenCall[]
}

const metaOf = (m: grpc.Metadata): Record<string, unknown> => m.getMap()

/**
 * Starts the echo upstream. Each method answers with the text it got and `n` counting the
 * messages; every call sends trailing metadata `x-trailer: <method>`; a Unary call with text
 * `fail` ends with NOT_FOUND and `nope`. `tls`: the server's pair, and the CA its clients must
 * present a certificate from.
 */
export async function startGrpcEcho(t: Test, tls?: { cert: string; key: string; ca: string }): Promise<EchoServer> {
  const { service } = echoPackage()
  const seen: SeenCall[] = []
  const note = (method: string, call: { metadata: grpc.Metadata; getDeadline(): grpc.Deadline; on(e: 'cancelled', l: () => void): unknown }): SeenCall => {
    const d = call.getDeadline()
    const s: SeenCall = { method, metadata: metaOf(call.metadata), deadline: d instanceof Date || (typeof d === 'number' && Number.isFinite(d)), cancelled: false }
    call.on('cancelled', () => (s.cancelled = true))
    seen.push(s)
    return s
  }
  const trailer = (method: string): grpc.Metadata => {
    const m = new grpc.Metadata()
    m.set('x-trailer', method)
    return m
  }
  const server = new grpc.Server()
  server.addService(service, {
    Unary(call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) {
      note('Unary', call)
      if (call.request.text === 'fail') return cb({ code: grpc.status.NOT_FOUND, details: 'nope', metadata: trailer('Unary') })
      cb(null, { text: call.request.text, n: 1 }, trailer('Unary'))
    },
    ServerStream(call: grpc.ServerWritableStream<Msg, Msg>) {
      note('ServerStream', call)
      for (let i = 1; i <= call.request.n; i++) call.write({ text: `${call.request.text}-${i}`, n: i })
      call.end(trailer('ServerStream'))
    },
    ClientStream(call: grpc.ServerReadableStream<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) {
      note('ClientStream', call)
      const texts: string[] = []
      call.on('data', (m: Msg) => texts.push(m.text))
      call.on('end', () => cb(null, { text: texts.join(','), n: texts.length }, trailer('ClientStream')))
    },
    Bidi(call: grpc.ServerDuplexStream<Msg, Msg>) {
      note('Bidi', call)
      let n = 0
      call.on('data', (m: Msg) => call.write({ text: m.text.toUpperCase(), n: ++n }))
      call.on('end', () => call.end(trailer('Bidi')))
    },
  })
  const creds = tls
    ? grpc.ServerCredentials.createSsl(Buffer.from(tls.ca), [{ cert_chain: Buffer.from(tls.cert), private_key: Buffer.from(tls.key) }], true)
    : grpc.ServerCredentials.createInsecure()
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))))
  t.teardown(() => new Promise<void>((r) => server.tryShutdown(() => r())))
  return { port, seen }
}

/** Unary as a promise: the answer, or the error with its code, details and metadata. */
export function unary(c: grpc.Client, m: Msg, o: { deadlineMs?: number; metadata?: Record<string, string> } = {}): Promise<{ msg?: Msg; err?: grpc.ServiceError; trailers?: grpc.Metadata }> {
  return new Promise((resolve) => {
    let trailers: grpc.Metadata | undefined
    const opts: grpc.CallOptions = o.deadlineMs ? { deadline: Date.now() + o.deadlineMs } : {}
    const md = new grpc.Metadata()
    for (const [k, v] of Object.entries(o.metadata ?? {})) md.set(k, v)
    const call = (c as unknown as Record<string, (m: Msg, md: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Msg) => void) => grpc.ClientUnaryCall>)['Unary']!(m, md, opts, (err, msg) => {
      setImmediate(() => resolve({ ...(msg ? { msg } : {}), ...(err ? { err } : {}), ...(trailers ? { trailers } : {}) }))
    })
    call.on('status', (s: grpc.StatusObject) => (trailers = s.metadata))
  })
}
