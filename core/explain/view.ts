/**
 * The generation explain answers from: etcd's objects as the admin lists them, decoded with the
 * data plane's decoders (core/config/decode-all.ts) and derived with the data plane's derive
 * (core/generation/derive.ts), so an object the data plane refuses is absent here too.
 */
import { buildDecode } from '../config/decode-all.js'
import { createFullLoad } from '../config/full-load.js'
import type { ConfigEvent } from '../config/apply.js'
import { emptySnapshot } from '../config/snapshot.js'
import { deriveGeneration } from '../generation/derive.js'
import { emptyGeneration, type Generation } from '../generation/generation.js'
import { createPolicyCache } from '../tls/contexts.js'
import { createPlanCache } from '../generation/http-plan.js'

/** One listed key, its value already parsed (admin/kv.ts's Kv). */
export interface ListedKv {
  readonly key: string
  readonly value: unknown
  readonly createRevision: string
  readonly modRevision: string
}

const NO_TICKETS = (): never => {
  throw new Error('explain never builds a TLS server')
}

/** The generation of a listing of every resource under `prefix`. */
export function explainGeneration(prefix: string, listed: Iterable<ListedKv>, keyring: readonly string[]): Generation {
  const load = createFullLoad(prefix, buildDecode())
  const events: ConfigEvent[] = []
  for (const kv of listed) events.push({ type: 'put', key: kv.key, value: JSON.stringify(kv.value), modRevision: kv.modRevision, createRevision: kv.createRevision })
  load.page(events)
  const { snapshot } = load.finish(emptySnapshot(), '0')
  // the data plane's builder with caches of its own: the policies are cheap until server() is
  // called, which explain never does
  const policies = createPolicyCache({ keyring, tickets: NO_TICKETS, onBuildError: () => undefined })
  return deriveGeneration(snapshot, emptyGeneration(), { full: true }, { policies, plans: createPlanCache(), consumerCerts: new WeakMap(), keyring })
}
