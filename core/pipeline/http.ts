/**
 * What the pipeline uses of a request and of its response. Node's IncomingMessage and
 * ServerResponse have both shapes; so do the light objects of the fast HTTP/1.1 path
 * (core/server/fast-http.ts), which serves the common bodiless keep-alive requests on TLS.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeader, OutgoingHttpHeaders } from 'node:http'
import type { Socket } from 'node:net'
import type { Readable } from 'node:stream'

/** A request's head: everything the pipeline reads of it (its body, when it has one, is Node's stream). */
export interface RequestHead {
  readonly method?: string | undefined
  readonly url?: string | undefined
  readonly headers: IncomingHttpHeaders
  readonly rawHeaders: string[]
  readonly socket: Socket
  /** `1.0`, `1.1` or `2.0` */
  readonly httpVersion?: string
  /**
   * The body stream when it is not the request itself (HTTP/2: the stream, which carries no
   * Content-Length for gRPC and most clients); null: no body. Undefined: the request is its own
   * body when it has Content-Length or Transfer-Encoding (HTTP/1.1).
   */
  readonly body?: Readable | null
}

/** The response the pipeline writes. */
export interface HttpResponse {
  statusCode: number
  readonly headersSent: boolean
  readonly writableFinished: boolean
  /** false: the connection closes after this response */
  shouldKeepAlive: boolean
  /** HTTP/2: the whole connection closes once this stream is answered (GOAWAY); HTTP/1.1 uses shouldKeepAlive */
  closeConnection?(): void
  setHeader(name: string, value: string | number): unknown
  /** headers as an object, or as a flat `[name, value, …]` list (repeats kept) */
  writeHead(status: number, headers?: OutgoingHttpHeaders | OutgoingHttpHeader[]): unknown
  write(chunk: Buffer | string): boolean
  end(data?: Buffer | string): unknown
  /** 'close' once the response is done or its connection went away; 'drain' after back-pressure */
  on(event: 'close' | 'drain' | 'finish', listener: () => void): unknown
  once(event: 'close' | 'drain' | 'finish', listener: () => void): unknown
  /** sends the head now, before any body byte (Node's ServerResponse and HTTP/2) */
  flushHeaders?(): void
  /** HTTP/2 only: the response will end with trailers (call before writeHead) */
  expectTrailers?(): void
  /** HTTP/2 only: the trailers sent after the body (with expectTrailers) */
  setTrailers?(trailers: Readonly<Record<string, string | string[]>>): void
  /** HTTP/2 only: resets the stream with this RST_STREAM code (an upstream's reset passed on) */
  reset?(code: number): void
  /** cuts the response: HTTP/1.1 closes the connection, HTTP/2 resets the stream (the connection goes on) */
  destroy(err?: Error): unknown
}
