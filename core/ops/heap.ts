import { exposeGc } from '../runtime/node-internals.js'

/** Garbage collections a worker asks for around a large configuration load. */
export interface HeapCare {
  /** A young-generation collection: frees the buffers of a listing page just decoded (a few ms). */
  minor(): void
  /**
   * A full, memory-reducing collection once a full listing is built: it compacts the old space
   * and gives back the young generation the listing grew.
   */
  major(): void
}

const none: HeapCare = { minor: () => undefined, major: () => undefined }

/**
 * Decoding a 100k-object listing passes ~160 MiB of etcd responses through buffers that V8 frees
 * only when their small JS wrappers are collected; until then the allocator keeps growing, and
 * the process keeps that memory. A young collection after each page frees them while they are
 * still young (measured: 50 pages of 3 MB, RSS 196 → 154 MiB, and faster). `gc` is exposed at
 * run time (core/runtime/node-internals.ts); when the runtime refuses, both calls do nothing.
 *
 * The decoded objects survive those young collections, so V8 grows the young generation to its
 * maximum (two 64 MiB semi-spaces on Node 24, touched, so resident) and an ordinary full
 * collection keeps it; V8's memory reducer gives it back only once the process has idled for
 * several seconds. `major` is V8's last-resort flavour (full collections with "reduce memory
 * footprint" until nothing more is freed): the young generation shrinks to 1 MiB and the old
 * space is compacted at once. Measured with 100k ssl objects (load 11–13 on 2 cores): a worker's
 * RSS 0.5 s after ready 466 → 322 MiB, the pause 0.3–0.6 s → 1.0–1.4 s, once per full load.
 */
export function heapCare(): HeapCare {
  const gc = exposeGc()
  if (typeof gc === 'string') return none
  return { minor: () => void gc({ type: 'minor' }), major: () => void gc({ type: 'major', execution: 'sync', flavor: 'last-resort' }) }
}
