import type { Snapshot } from './config/snapshot.js'
import { emptySnapshot } from './config/snapshot.js'

/**
 * A generation: the frozen snapshot plus everything derived from it (DESIGN.md §2.5). Built by
 * core/derive.ts, published by core/config/store.ts in one assignment; a handshake or a request
 * pins one generation and uses it to the end.
 */
export interface Generation {
  /** +1 per published change */
  readonly version: number
  readonly snapshot: Snapshot
}

/** The generation before the first load. */
export const emptyGeneration = (): Generation => ({ version: 0, snapshot: emptySnapshot() })
