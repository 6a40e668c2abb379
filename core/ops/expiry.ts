/**
 * Keeps the certificate-expiry gauge in step with the published configuration. A change costs
 * O(changed objects): the tracker diffs the last applied maps of ssl objects and consumers with
 * the new ones (diffMaps, the walk core/generation/derive.ts uses: O(changes × log n) for persistent maps) and
 * reads the certificates of the changed objects only. It keeps each object's records by key and
 * publishes a view that lists them in the maps' order when read, so the gauge, built lazily at
 * the next scrape, equals one built from every certificate. A long list of changes (the first
 * load) is read in slices that yield to the event loop, so requests never wait behind it.
 */
import { certificateRecords, type CertRecord, type ConsumerLike, type ParsedCert, type SkippedCert, type SslLike } from '../x509/records.js'
import { diffMaps, type MapChange } from '../collections/persistent-map.js'

/** What the tracker needs from its owner; clock and scheduler are passed in. */
export interface ExpiryTrackerDeps {
  readonly parse: (pem: string) => ParsedCert
  /** reads an ssl object's `client.crl` into rows (issuer, nextUpdate) for the CRL gauge */
  readonly parseCrls?: (pem: string) => ParsedCert[]
  /**
   * Receives every certificate each time a pass completes: a view read lazily, valid until the
   * next publish (it reads the tracker's records, which the next completed pass changes).
   */
  readonly publish: (records: Iterable<CertRecord>) => void
  readonly onSkip?: (skipped: SkippedCert) => void
  /** Runs `fn` later (setImmediate in a worker). */
  readonly defer: (fn: () => void) => void
  /** A monotonic clock in ms (performance.now in a worker). */
  readonly clock: () => number
  /** Work at most this long before yielding (default 5 ms). */
  readonly sliceMs?: number
}

/** A map entry as a snapshot holds it: the frozen object is its `value`. */
export interface Held<T> {
  readonly value: T
}

/**
 * The ssl objects and consumers of one generation, as the snapshot's maps (never mutated once
 * passed in: a new generation passes new maps).
 */
export interface CertSources {
  readonly ssls: ReadonlyMap<string, Held<SslLike & object>>
  readonly consumers: ReadonlyMap<string, Held<ConsumerLike & object>>
}

/** An expiry tracker: feed it each new set of sources; it publishes when a pass completes. */
export interface ExpiryTracker {
  /** Schedules a pass to these sources; a pass still running restarts towards the newest sources. */
  update(sources: CertSources): void
  /** Resolves when no pass is pending or running (for tests and drain). */
  idle(): Promise<void>
}

type Records = readonly CertRecord[]
const NONE: Records = []

/** The records of one resource by key, equal to reading each current object's certificates. */
type Known = Map<string, Records>

/** Creates a tracker; nothing runs until the first update(). */
export function createExpiryTracker(d: ExpiryTrackerDeps): ExpiryTracker {
  const sliceMs = d.sliceMs ?? 5
  let pending: CertSources | undefined
  let running = false
  let waiters: (() => void)[] = []
  // the sources of the last completed pass and their records by key (ssl ids and consumer names
  // are separate key spaces)
  let applied: CertSources = { ssls: new Map(), consumers: new Map() }
  const sslRecords: Known = new Map()
  const consumerRecords: Known = new Map()
  // records read by passes dropped for newer sources, by object (a frozen value keeps its
  // identity while unchanged), so the next pass does not read them again; cleared when one completes
  let dropped = new Map<object, Records>()

  /** One resource's changes since `applied`: every entry when nothing was applied yet (no diff needed). */
  const changesOf = <T>(before: ReadonlyMap<string, Held<T>>, after: ReadonlyMap<string, Held<T>>): Iterable<MapChange<Held<T>>> =>
    before.size === 0 ? addedAll(after) : diffMaps(before, after)

  // One pass as a generator: it yields when its slice is spent, and the driver resumes it later.
  // It reads the changed objects into `staged` (key → records, or undefined for a removed key).
  function* pass(src: CertSources, stagedSsls: Map<string, Records | undefined>, stagedConsumers: Map<string, Records | undefined>): Generator<void, void> {
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
    const read = (obj: object, list: () => CertRecord[]): Records => {
      const r = dropped.get(obj) ?? list()
      return r.length === 0 ? NONE : r
    }
    let sliceStart = d.clock()
    for (const c of changesOf(applied.ssls, src.ssls)) {
      const ssl = c.after?.value
      stagedSsls.set(c.key, ssl === undefined ? undefined : read(ssl, () => certificateRecords([ssl], [], parse, d.onSkip, d.parseCrls)))
      if (d.clock() - sliceStart >= sliceMs) {
        yield
        sliceStart = d.clock()
      }
    }
    for (const c of changesOf(applied.consumers, src.consumers)) {
      const consumer = c.after?.value
      stagedConsumers.set(c.key, consumer === undefined ? undefined : read(consumer, () => certificateRecords([], [consumer], parse, d.onSkip)))
      if (d.clock() - sliceStart >= sliceMs) {
        yield
        sliceStart = d.clock()
      }
    }
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
    const stagedSsls = new Map<string, Records | undefined>()
    const stagedConsumers = new Map<string, Records | undefined>()
    const it = pass(src, stagedSsls, stagedConsumers)
    const step = (): void => {
      // newer sources arrived while this pass waited: drop it, keeping what it read
      if (pending !== undefined) {
        keepRead(src.ssls, stagedSsls, dropped)
        keepRead(src.consumers, stagedConsumers, dropped)
        return drive()
      }
      if (it.next().done === true) {
        commit(sslRecords, stagedSsls)
        commit(consumerRecords, stagedConsumers)
        applied = src
        dropped = new Map()
        d.publish(view(src, sslRecords, consumerRecords))
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

/** Every entry of `m` as an addition. */
function* addedAll<T>(m: ReadonlyMap<string, T>): Generator<MapChange<T>, void> {
  for (const [key, after] of m) yield { key, before: undefined, after }
}

function commit(known: Known, staged: ReadonlyMap<string, Records | undefined>): void {
  for (const [key, r] of staged) {
    if (r === undefined) known.delete(key)
    else known.set(key, r)
  }
}

/** Remembers what a dropped pass read, by the object it read it from. */
function keepRead(m: ReadonlyMap<string, Held<object>>, staged: ReadonlyMap<string, Records | undefined>, into: Map<object, Records>): void {
  for (const [key, r] of staged) {
    const obj = m.get(key)?.value
    if (r !== undefined && obj !== undefined) into.set(obj, r)
  }
}

/** Every record of `src` in its maps' order (ssl objects, then consumers), read when iterated. */
function view(src: CertSources, ssls: Known, consumers: Known): Iterable<CertRecord> {
  return {
    *[Symbol.iterator]() {
      for (const key of src.ssls.keys()) yield* ssls.get(key) ?? NONE
      for (const key of src.consumers.keys()) yield* consumers.get(key) ?? NONE
    },
  }
}
