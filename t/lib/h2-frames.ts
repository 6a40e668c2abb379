/**
 * A small raw HTTP/2 frame writer and reader for the abuse tests (t/e2e/h2-abuse.test.ts): frames
 * as RFC 9113 §4.1 lays them out, header blocks in HPACK without Huffman (RFC 7541), and a
 * connection that records every frame the server sends, so a test can wait for GOAWAY and the close.
 */
import { connect as netConnect, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'

export const FRAME = { DATA: 0, HEADERS: 1, PRIORITY: 2, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const
export const SETTING = { HEADER_TABLE_SIZE: 1, ENABLE_PUSH: 2, MAX_CONCURRENT_STREAMS: 3, INITIAL_WINDOW_SIZE: 4, MAX_FRAME_SIZE: 5 } as const
export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1')

/** One frame: 9-byte header then the payload. */
export function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9)
  h.writeUIntBE(payload.length, 0, 3)
  h[3] = type
  h[4] = flags
  h.writeUInt32BE(stream & 0x7fffffff, 5)
  return Buffer.concat([h, payload])
}

export const settings = (pairs: [number, number][] = []): Buffer => {
  const p = Buffer.alloc(6 * pairs.length)
  pairs.forEach(([id, v], i) => {
    p.writeUInt16BE(id, 6 * i)
    p.writeUInt32BE(v, 6 * i + 2)
  })
  return frame(FRAME.SETTINGS, 0, 0, p)
}
export const settingsAck = (): Buffer => frame(FRAME.SETTINGS, FLAG.ACK, 0)
export const rstStream = (stream: number, code = 8): Buffer => {
  const p = Buffer.alloc(4)
  p.writeUInt32BE(code)
  return frame(FRAME.RST_STREAM, 0, stream, p)
}
export const windowUpdate = (stream: number, inc: number): Buffer => {
  const p = Buffer.alloc(4)
  p.writeUInt32BE(inc)
  return frame(FRAME.WINDOW_UPDATE, 0, stream, p)
}
export const ping = (): Buffer => frame(FRAME.PING, 0, 0, Buffer.alloc(8))

/** An HPACK integer with an N-bit prefix (RFC 7541 §5.1); `first` holds the bits above the prefix. */
export function hpackInt(value: number, prefixBits: number, first = 0): Buffer {
  const max = (1 << prefixBits) - 1
  if (value < max) return Buffer.from([first | value])
  const out = [first | max]
  let v = value - max
  while (v >= 128) {
    out.push((v % 128) + 128)
    v = Math.floor(v / 128)
  }
  out.push(v)
  return Buffer.from(out)
}

const str = (s: string): Buffer => Buffer.concat([hpackInt(Buffer.byteLength(s), 7), Buffer.from(s)])

/** A literal field without indexing, new name (RFC 7541 §6.2.2). */
export const literal = (name: string, value: string): Buffer => Buffer.concat([Buffer.from([0]), str(name), str(value)])
/** A literal field with incremental indexing, new name (§6.2.1): it enters the dynamic table. */
export const literalIndexed = (name: string, value: string): Buffer => Buffer.concat([Buffer.from([0x40]), str(name), str(value)])
/** An indexed field (§6.1): static table 1–61, dynamic from 62. */
export const indexed = (i: number): Buffer => hpackInt(i, 7, 0x80)

/** The header block of `GET path` for `authority` (`:scheme` https or http). */
export function requestBlock(path: string, authority: string, scheme: 'http' | 'https' = 'https', method = 'GET'): Buffer {
  return Buffer.concat([literal(':method', method), literal(':scheme', scheme), literal(':path', path), literal(':authority', authority)])
}

export interface Frame {
  readonly type: number
  readonly flags: number
  readonly stream: number
  readonly payload: Buffer
}

/** A raw HTTP/2 client connection that records what the server sends. */
export interface RawH2 {
  readonly socket: Socket
  readonly frames: Frame[]
  /** true once the server closed (or reset) the connection */
  readonly closed: boolean
  /** the GOAWAY's error code, undefined while none came */
  goawayCode(): number | undefined
  write(b: Buffer): boolean
  destroy(): void
}

/** Opens a connection (TLS with ALPN h2 when `servername` is given, else h2c), sends the preface and empty SETTINGS. */
export function rawH2(port: number, o: { servername?: string; settings?: [number, number][]; ackSettings?: boolean } = {}): Promise<RawH2> {
  return new Promise((resolve, reject) => {
    const socket: Socket = o.servername !== undefined
      ? tlsConnect({ host: '127.0.0.1', port, servername: o.servername, ALPNProtocols: ['h2'], rejectUnauthorized: false })
      : netConnect({ host: '127.0.0.1', port })
    const frames: Frame[] = []
    let buf = Buffer.alloc(0)
    let closed = false
    const conn: RawH2 = {
      socket,
      frames,
      get closed() {
        return closed
      },
      goawayCode() {
        const g = frames.find((f) => f.type === FRAME.GOAWAY)
        return g === undefined ? undefined : g.payload.readUInt32BE(4)
      },
      write: (b) => (socket.destroyed ? false : socket.write(b)),
      destroy: () => socket.destroy(),
    }
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d])
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3)
        if (buf.length < 9 + len) break
        const f: Frame = { type: buf[3]!, flags: buf[4]!, stream: buf.readUInt32BE(5) & 0x7fffffff, payload: buf.subarray(9, 9 + len) }
        frames.push(f)
        // the server's SETTINGS are acknowledged unless the test holds the ACKs back
        if (f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0 && o.ackSettings !== false) conn.write(settingsAck())
        buf = buf.subarray(9 + len)
      }
    })
    socket.on('error', () => undefined)
    socket.on('close', () => (closed = true))
    socket.once(o.servername !== undefined ? 'secureConnect' : 'connect', () => {
      socket.write(Buffer.concat([PREFACE, settings(o.settings)]))
      resolve(conn)
    })
    socket.once('error', reject)
  })
}
