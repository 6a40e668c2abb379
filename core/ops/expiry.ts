/**
 * Keeps the certificate-expiry gauge in step with the published configuration. Each object's
 * records are cached by the object itself (a frozen value keeps its identity while unchanged,
 * DESIGN.md §2.5), so a change re-reads only the certificates that changed. A large listing is
 * read in slices that yield to the event loop, so requests never wait behind it.
 */
import { certificateRecords, type CertRecord, type ConsumerLike, type ParsedCert, type SkippedCert, type SslLike } from '../cert-records.js'

/** What the tracker needs from its owner; clock and scheduler are passed in. */
export interface ExpiryTrackerDeps {
  readonly parse: (pem: string) => ParsedCert
  /** Receives the full record list each time a pass completes. */
  readonly publish: (records: readonly CertRecord[]) => void
  readonly onSkip?: (skipped: SkippedCert) => void
  /** Runs `fn` later (setImmediate in a worker). */
  readonly defer: (fn: () => void) => void
  /** A monotonic clock in ms (performance.now in a worker). */
  readonly clock: () => number
  /** Work at most this long before yielding (default 5 ms). */
  readonly sliceMs?: number
}

/** The ssl objects and consumers of one generation. */
export interface CertSources {
  readonly ssls: Iterable<SslLike & object>
  readonly consumers: Iterable<ConsumerLike & object>
}

/** An expiry tracker: feed it each new set of sources; it publishes when a pass completes. */
export interface ExpiryTracker {
  /** Schedules a pass over these sources; a pass still running restarts on the newest sources. */
  update(sources: CertSources): void
  /** Resolves when no pass is pending or running (for tests and drain). */
  idle(): Promise<void>
}

/** Creates a tracker; nothing runs until the first update(). */
export function createExpiryTracker(d: ExpiryTrackerDeps): ExpiryTracker {
  const cache = new WeakMap<object, readonly CertRecord[]>()
  const sliceMs = d.sliceMs ?? 5
  let pending: CertSources | undefined
  let running = false
  let waiters: (() => void)[] = []

  const recordsOf = (obj: object, read: () => CertRecord[]): readonly CertRecord[] => {
    let r = cache.get(obj)
    if (r === undefined) {
      r = read()
      cache.set(obj, r)
    }
    return r
  }

  // One pass as a generator: it yields when its slice is spent, and the driver resumes it later.
  function* pass(src: CertSources): Generator<void, CertRecord[]> {
    const out: CertRecord[] = []
    // objects often share a certificate (one wildcard for many ssl objects): each PEM text is
    // parsed once a pass; the memo lives only as long as the pass, so it holds no stale text
    const memo = new Map<string, ParsedCert>()
    const parse = (pem: string): ParsedCert => {
      let p = memo.get(pem)
      if (p === undefined) {
        p = d.parse(pem)
        memo.set(pem, p)
      }
      return p
    }
    let sliceStart = d.clock()
    const tick = function* (): Generator<void> {
      if (d.clock() - sliceStart < sliceMs) return
      yield
      sliceStart = d.clock()
    }
    for (const ssl of src.ssls) {
      out.push(...recordsOf(ssl, () => certificateRecords([ssl], [], parse, d.onSkip)))
      yield* tick()
    }
    for (const c of src.consumers) {
      out.push(...recordsOf(c, () => certificateRecords([], [c], parse, d.onSkip)))
      yield* tick()
    }
    return out
  }

  const drive = (): void => {
    const src = pending
    if (src === undefined) {
      running = false
      const w = waiters
      waiters = []
      for (const f of w) f()
      return
    }
    pending = undefined
    const it = pass(src)
    const step = (): void => {
      // newer sources arrived while this pass waited: drop it, the cache keeps its progress
      if (pending !== undefined) return drive()
      const r = it.next()
      if (r.done === true) {
        d.publish(r.value)
        return drive()
      }
      d.defer(step)
    }
    step()
  }

  return {
    update(sources) {
      pending = sources
      if (running) return
      running = true
      d.defer(drive)
    },
    idle: () => (running ? new Promise<void>((r) => waiters.push(r)) : Promise.resolve()),
  }
}
