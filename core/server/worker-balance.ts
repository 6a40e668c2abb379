/**
 * Connection balance between the data-plane workers.
 *
 * node:cluster runs with SCHED_NONE (core/server/workers.ts): every worker accepts from the
 * shared listening sockets itself, so a new connection costs no IPC hand-off through the primary
 * (measured: that hand-off was about a fifth of the gateway's CPU per full TLS handshake). The
 * kernel gives a burst of connections to whichever worker wakes first, though: a pool of 32
 * keep-alive connections opened at once landed 32/0 in 2 of 10 tries. So the workers keep their
 * counts in a small table the primary shares with them (an unlinked file, inherited as fd 4),
 * and a worker holding clearly more connections than the least-loaded one hands a new one over,
 * through the primary, to the least-loaded worker: a TLS connection after its ClientHello was
 * read (the bytes travel in the message; a TLS client sends nothing more before the server
 * answers), a plain HTTP one before anything is read (core/server/listeners.ts).
 *
 * Counts are weights: a connection weighs 1, except one whose ClientHello offers h2 on a gateway
 * with HTTP/2 on (the ALPN then chooses h2), which weighs H2_WEIGHT from the moment its
 * ClientHello is read: it may carry up to 128 streams at once where an HTTP/1.1 connection carries
 * one. Without the weight, bench row 7's 16 HTTP/2 connections (8 streams each) ended 10/6 between
 * 2 workers (MIN_GAP) in 7 of 12 tries, and the busier worker's streams waited longer (its
 * in-worker stream p50 1.5× the other's).
 *
 * One slot per worker, five Int32 fields (weights), each written by one process only:
 *   own      connections the worker holds (−1: not serving: starting, draining or dead)  worker
 *   sent     connections it handed to the primary (monotonic)                              worker
 *   adopted  connections it took from the primary (monotonic)                              worker
 *   received hand-overs the primary took from it (monotonic)                               primary
 *   routed   hand-overs the primary sent to it (monotonic)                                  primary
 */
import { closeSync, existsSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import type { Socket } from 'node:net'
import { stopReading } from '../runtime/node-internals.js'

export const SLOT_BYTES = 20
/** The fd a worker finds the table at (the primary passes it in the workers' stdio). */
export const TABLE_FD = 4
/** Below this gap between a worker and the least-loaded one, nothing is handed over. */
export const MIN_GAP = 4
/** What an HTTP/2 connection weighs in the table (an HTTP/1.1 or plain one: 1). */
export const H2_WEIGHT = 8

export interface Slot {
  readonly own: number
  readonly sent: number
  readonly adopted: number
  readonly received: number
  readonly routed: number
}

export function decodeTable(buf: Buffer, n: number): Slot[] {
  const out: Slot[] = []
  for (let i = 0; i < n; i++) {
    const o = i * SLOT_BYTES
    out.push({ own: buf.readInt32LE(o), sent: buf.readInt32LE(o + 4), adopted: buf.readInt32LE(o + 8), received: buf.readInt32LE(o + 12), routed: buf.readInt32LE(o + 16) })
  }
  return out
}

/** A serving worker's load: what it holds plus what the primary sent it that it has not taken yet. */
export const loadOf = (s: Slot): number => s.own + Math.max(0, s.routed - s.adopted)

/**
 * Whether worker `self` should hand over its next connection, of weight `weight` (counted in its
 * `own` already): it holds more than the least-loaded other serving worker (counting its own
 * hand-overs still on the way to the primary as theirs) by more than MIN_GAP, the connection's
 * weight (moving it must narrow the gap, not mirror it) and a sixteenth of the two together
 * (32 HTTP/1.1 connections end no worse than 18/14, 1,000 no worse than 531/469, 16 HTTP/2 ones
 * 8/8). One worker alone keeps everything.
 */
export function shouldHandOver(table: readonly Slot[], self: number, weight = 1): boolean {
  const me = table[self]
  if (me === undefined || me.own < 0) return false
  let min = Infinity
  for (let i = 0; i < table.length; i++) {
    const s = table[i]!
    if (i !== self && s.own >= 0) min = Math.min(min, loadOf(s))
  }
  if (min === Infinity) return false
  min += Math.max(0, me.sent - me.received)
  return me.own - min > Math.max(MIN_GAP, weight, (me.own + min) / 16)
}

/** Where the primary sends a connection worker `from` handed over: the least-loaded other serving worker, else back. */
export function routeTarget(table: readonly Slot[], from: number): number {
  let best = from
  let bestLoad = Infinity
  for (let i = 0; i < table.length; i++) {
    const s = table[i]!
    if (i === from || s.own < 0) continue
    const l = loadOf(s)
    if (l < bestLoad) {
      best = i
      bestLoad = l
    }
  }
  return best
}

/** The primary's side: creates the table (unlinked at once: only the fd lives) and routes hand-overs. */
export class BalanceTable {
  readonly fd: number
  readonly n: number
  private readonly buf: Buffer
  /** the primary-written fields, kept here and written through */
  private readonly received: number[]
  private readonly routed: number[]

  constructor(n: number) {
    this.n = n
    const dir = existsSync('/dev/shm') ? '/dev/shm' : tmpdir()
    const path = join(dir, `apisix-balance-${process.pid}-${randomBytes(6).toString('hex')}`)
    this.fd = openSync(path, 'w+', 0o600)
    unlinkSync(path)
    this.buf = Buffer.alloc(n * SLOT_BYTES)
    this.received = new Array<number>(n).fill(0)
    this.routed = new Array<number>(n).fill(0)
    for (let i = 0; i < n; i++) this.buf.writeInt32LE(-1, i * SLOT_BYTES)
    writeSync(this.fd, this.buf, 0, this.buf.length, 0)
  }

  /** A worker is gone (or about to be replaced): its slot serves nothing until the next one writes it. */
  reset(slot: number): void {
    const b = Buffer.alloc(SLOT_BYTES)
    b.writeInt32LE(-1, 0)
    this.received[slot] = 0
    this.routed[slot] = 0
    writeSync(this.fd, b, 0, SLOT_BYTES, slot * SLOT_BYTES)
  }

  /** Picks the worker for a connection `from` handed over (of `weight`) and counts it as on its way there. */
  route(from: number, weight = 1): number {
    readSync(this.fd, this.buf, 0, this.buf.length, 0)
    const to = routeTarget(decodeTable(this.buf, this.n), from)
    this.received[from] = (this.received[from] ?? 0) + weight
    this.routed[to] = (this.routed[to] ?? 0) + weight
    this.writePrimary(from)
    if (to !== from) this.writePrimary(to)
    return to
  }

  close(): void {
    closeSync(this.fd)
  }

  private writePrimary(slot: number): void {
    const b = Buffer.alloc(8)
    b.writeInt32LE(this.received[slot] ?? 0, 0)
    b.writeInt32LE(this.routed[slot] ?? 0, 4)
    writeSync(this.fd, b, 0, 8, slot * SLOT_BYTES + 12)
  }
}

/** A worker's side: its own counts, written through on every change, and the hand-over test. */
export class BalanceSlot {
  own = 0
  sent = 0
  adopted = 0
  serving = false
  private readonly fd: number
  private readonly slot: number
  private readonly table: Buffer
  private readonly mine = Buffer.alloc(12)
  /** the weight of each counted connection that weighs more than 1 */
  private readonly weights = new WeakMap<Socket, number>()
  /** the 'close' listener of every counted connection (an emitter runs a listener with itself as `this`) */
  private readonly onClose: (this: Socket) => void

  constructor(fd: number, slot: number, n: number) {
    this.fd = fd
    this.slot = slot
    this.table = Buffer.alloc(n * SLOT_BYTES)
    const self = this
    this.onClose = function (this: Socket): void {
      self.closed(this)
    }
  }

  /** Serving starts (listening) or stops (draining): others route to it only while it serves. */
  setServing(on: boolean): void {
    this.serving = on
    this.write()
  }

  /** Counts a connection accepted here (weight 1 until `weigh`) until it closes. */
  track(socket: Socket): void {
    this.own++
    this.write()
    socket.once('close', this.onClose)
  }

  /** A tracked or adopted connection turns out to weigh `weight` (an HTTP/2 ClientHello): counted so from now on. */
  weigh(socket: Socket, weight: number): void {
    const was = this.weightOf(socket)
    if (weight === was) return
    if (weight === 1) this.weights.delete(socket)
    else this.weights.set(socket, weight)
    this.own += weight - was
    this.write()
  }

  /** Counts a connection of `weight` another worker handed over, until it closes. */
  adopt(socket: Socket, weight = 1): void {
    if (weight !== 1) this.weights.set(socket, weight)
    this.own += weight
    this.adopted += weight
    this.write()
    socket.once('close', this.onClose)
  }

  /**
   * Hands a tracked connection over when this worker holds clearly more than another: its handle
   * stops reading here, and `send` passes it (with its weight) to the primary (false when the
   * primary is gone: the connection is closed, the client reconnects to a worker that stays).
   * True when it went.
   */
  handOverIfBusy(socket: Socket, send: (socket: Socket, weight: number) => boolean): boolean {
    const weight = this.weightOf(socket)
    if (!this.shouldHandOver(weight)) return false
    socket.off('close', this.onClose)
    this.weights.delete(socket)
    this.own -= weight
    this.sent += weight
    this.write()
    stopReading(socket)
    if (!send(socket, weight)) socket.destroy()
    return true
  }

  private weightOf(socket: Socket): number {
    return this.weights.get(socket) ?? 1
  }

  private closed(socket: Socket): void {
    this.own -= this.weightOf(socket)
    this.weights.delete(socket)
    this.write()
  }

  shouldHandOver(weight = 1): boolean {
    if (!this.serving) return false
    readSync(this.fd, this.table, 0, this.table.length, 0)
    const slots = decodeTable(this.table, this.table.length / SLOT_BYTES)
    return shouldHandOver(slots, this.slot, weight)
  }

  private write(): void {
    this.mine.writeInt32LE(this.serving ? this.own : -1, 0)
    this.mine.writeInt32LE(this.sent, 4)
    this.mine.writeInt32LE(this.adopted, 8)
    writeSync(this.fd, this.mine, 0, 12, this.slot * SLOT_BYTES)
  }
}

/** The worker's slot from its environment (`APISIX_BALANCE=slot/n`), undefined when the primary gave none. */
export function workerSlot(env: NodeJS.ProcessEnv): BalanceSlot | undefined {
  const m = /^(\d+)\/(\d+)$/.exec(env['APISIX_BALANCE'] ?? '')
  if (!m) return undefined
  const slot = Number(m[1])
  const n = Number(m[2])
  if (slot >= n) return undefined
  return new BalanceSlot(TABLE_FD, slot, n)
}
