/**
 * What the pipeline uses of a request and of its response. Node's IncomingMessage and
 * ServerResponse have both shapes; so do the light objects of the fast HTTP/1.1 path
 * (core/server/fast-http.ts), which serves the common bodiless keep-alive requests on TLS.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeader, OutgoingHttpHeaders } from 'node:http'
import type { Socket } from 'node:net'

/** A request's head: everything the pipeline reads of it (its body, when it has one, is Node's stream). */
export interface RequestHead {
  readonly method?: string | undefined
  readonly url?: string | undefined
  readonly headers: IncomingHttpHeaders
  readonly rawHeaders: string[]
  readonly socket: Socket
}

/** The response the pipeline writes. */
export interface HttpResponse {
  statusCode: number
  readonly headersSent: boolean
  readonly writableFinished: boolean
  /** false: the connection closes after this response */
  shouldKeepAlive: boolean
  setHeader(name: string, value: string | number): unknown
  /** headers as an object, or as a flat `[name, value, …]` list (repeats kept) */
  writeHead(status: number, headers?: OutgoingHttpHeaders | OutgoingHttpHeader[]): unknown
  write(chunk: Buffer | string): boolean
  end(data?: Buffer | string): unknown
  destroy(err?: Error): unknown
  /** 'close' once the response is done or its connection went away; 'drain' after back-pressure */
  on(event: 'close' | 'drain' | 'finish', listener: () => void): unknown
  once(event: 'close' | 'drain' | 'finish', listener: () => void): unknown
}
