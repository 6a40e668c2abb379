import type { Snapshot } from '../config/snapshot.js'
import { emptySnapshot } from '../config/snapshot.js'
import { buildSniIndex, type SniIndex } from '../tls/sni-index.js'
import type { TlsPolicy } from '../tls/contexts.js'
import { emptyHttpPlan, type HttpPlan } from './http-plan.js'
import { buildConsumerIndex, type ConsumerIndex } from '../plugins/consumer-index.js'

/**
 * A generation: the frozen snapshot plus everything derived from it (DESIGN.md §2.5). Built by
 * core/generation/derive.ts, published by core/config/store.ts in one assignment; a handshake or a request
 * pins one generation and uses it to the end.
 */
export interface Generation {
  /** +1 per published change */
  readonly version: number
  readonly snapshot: Snapshot
  /** SNI → TLS policy, over the ssl objects with status 1 and type server */
  readonly sni: SniIndex<TlsPolicy>
  /** routes, global rules' plugin chains, upstream plans (core/generation/http-plan.ts) */
  readonly http: HttpPlan
  /** consumers by the SHA-256 of their mtls-auth certificates */
  readonly consumers: ConsumerIndex
}

/** The generation before the first load. */
export const emptyGeneration = (): Generation => ({ version: 0, snapshot: emptySnapshot(), sni: buildSniIndex<TlsPolicy>([]), http: emptyHttpPlan(), consumers: buildConsumerIndex([]) })
