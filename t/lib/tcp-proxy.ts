import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import type { Test } from 'tap'

/** A TCP relay between clients and one target, whose connections a test can cut. */
export interface TcpProxy {
  /** the port it listens on (127.0.0.1) */
  readonly port: number
  /** client connections accepted so far */
  readonly accepted: number
  /** connections currently relayed */
  readonly live: number
  /**
   * Destroys every live connection (both sides); for `refuseMs` after that (Infinity: until
   * release()), new connections are closed as soon as they are accepted. Returns how many were cut.
   */
  cut(refuseMs?: number): number
  /** accepts and relays new connections again */
  release(): void
  /** while set, every connection accepted from now on is destroyed `afterMs` after it was accepted (a flapping link); undefined ends it */
  flap(afterMs: number | undefined): void
  /** stops listening and destroys every connection (idempotent) */
  close(): Promise<void>
}

/** Starts a relay on a free 127.0.0.1 port to `targetPort` on 127.0.0.1; closed at teardown. */
export async function startTcpProxy(t: Test, targetPort: number): Promise<TcpProxy> {
  const pairs = new Set<[Socket, Socket]>()
  let refusing = false
  let refuseTimer: NodeJS.Timeout | undefined
  let accepted = 0
  let flapMs: number | undefined
  const server = createServer((client) => {
    accepted++
    client.on('error', () => undefined)
    if (refusing) {
      client.destroy()
      return
    }
    const upstream = connect(targetPort, '127.0.0.1')
    upstream.on('error', () => undefined)
    const pair: [Socket, Socket] = [client, upstream]
    pairs.add(pair)
    const drop = (): void => {
      pairs.delete(pair)
      client.destroy()
      upstream.destroy()
    }
    client.on('close', drop)
    upstream.on('close', drop)
    client.pipe(upstream)
    upstream.pipe(client)
    if (flapMs !== undefined) setTimeout(drop, flapMs).unref()
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const release = (): void => {
    if (refuseTimer) clearTimeout(refuseTimer)
    refuseTimer = undefined
    refusing = false
  }
  const destroyAll = (): number => {
    const n = pairs.size
    for (const [a, b] of [...pairs]) {
      a.destroy()
      b.destroy()
    }
    pairs.clear()
    return n
  }
  let closed: Promise<void> | undefined
  const proxy: TcpProxy = {
    port: (server.address() as AddressInfo).port,
    get accepted() {
      return accepted
    },
    get live() {
      return pairs.size
    },
    cut(refuseMs = 0) {
      release()
      if (refuseMs > 0) {
        refusing = true
        if (Number.isFinite(refuseMs)) refuseTimer = setTimeout(release, refuseMs)
      }
      return destroyAll()
    },
    release,
    flap(afterMs) {
      flapMs = afterMs
    },
    close: () =>
      (closed ??= new Promise<void>((r) => {
        release()
        server.close(() => r())
        destroyAll()
      })),
  }
  t.teardown(() => proxy.close())
  return proxy
}
