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
  const sliceMs = d.sliceMs ?? 5
  let pending: CertSources | undefined
  let running = false
  let waiters: (() => void)[] = []
  // Records by object (a frozen value keeps its identity while unchanged): those of the last
  // completed pass, and the progress of passes dropped since. Strong maps rebuilt every pass, so a
  // removed object leaves with the next completed pass; a WeakMap of 100k keys made every full
  // collection walk its ephemerons.
  let known = new Map<object, readonly CertRecord[]>()
  let dropped = new Map<object, readonly CertRecord[]>()

  const recordsOf = (into: Map<object, readonly CertRecord[]>, obj: object, read: () => CertRecord[]): readonly CertRecord[] => {
    let r = known.get(obj) ?? dropped.get(obj)
    if (r === undefined) r = read()
    into.set(obj, r)
    return r
  }

  // One pass as a generator: it yields when its slice is spent, and the driver resumes it later.
  function* pass(src: CertSources, seen: Map<object, readonly CertRecord[]>): Generator<void, CertRecord[]> {
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
    for (const ssl of src.ssls) {
      for (const r of recordsOf(seen, ssl, () => certificateRecords([ssl], [], parse, d.onSkip))) out.push(r)
      if (d.clock() - sliceStart >= sliceMs) {
        yield
        sliceStart = d.clock()
      }
    }
    for (const c of src.consumers) {
      for (const r of recordsOf(seen, c, () => certificateRecords([], [c], parse, d.onSkip))) out.push(r)
      if (d.clock() - sliceStart >= sliceMs) {
        yield
        sliceStart = d.clock()
      }
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
    const seen = new Map<object, readonly CertRecord[]>()
    const it = pass(src, seen)
    const step = (): void => {
      // newer sources arrived while this pass waited: drop it, keeping its progress
      if (pending !== undefined) {
        for (const [o, r] of seen) dropped.set(o, r)
        return drive()
      }
      const r = it.next()
      if (r.done === true) {
        known = seen
        dropped = new Map()
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
