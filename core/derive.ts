import type { Snapshot } from './config/snapshot.js'
import type { ResourceName } from './etcd/keys.js'
import type { Generation } from './state.js'
import { buildSniIndex, type SniIndex } from './tls/sni-index.js'
import type { PolicyCache, TlsPolicy } from './tls/contexts.js'
import { buildHttpPlan } from './pipeline/plan.js'
import { pluginByName } from './plugins/registry.js'
import { buildConsumerIndex, type NormalizedCert } from './plugins/consumer-index.js'

/** What derive needs besides the snapshot: the worker's TLS policy cache and consumer certificate cache. */
export interface DeriveDeps {
  readonly policies?: PolicyCache
  /** decoded certificates per consumer object, kept across generations (an unchanged object is the same key) */
  readonly consumerCerts?: WeakMap<object, readonly NormalizedCert[]>
}

/**
 * The SNI index of a snapshot: one policy per ssl object with status 1 and type server. A
 * policy is reused while its entry is unchanged; an object changed through the watch (not a
 * full load) has its server built now, so no handshake waits for it (DESIGN.md §2.5).
 */
export function deriveSni(snapshot: Snapshot, policies: PolicyCache, eager: boolean): SniIndex<TlsPolicy> {
  const list: TlsPolicy[] = []
  for (const entry of snapshot.objects.ssls.values()) {
    const ssl = entry.value
    if (ssl.status === 0 || ssl.type === 'client') continue
    list.push(policies.policyFor(entry, eager))
  }
  return buildSniIndex(list)
}

/** Pure: snapshot (+ the previous generation) → the next generation, reusing unchanged parts. */
export function deriveGeneration(snapshot: Snapshot, prev: Generation, change: { full: boolean; changed: ReadonlySet<ResourceName> }, deps: DeriveDeps = {}): Generation {
  const sni = deps.policies && (change.full || change.changed.has('ssls')) ? deriveSni(snapshot, deps.policies, !change.full) : prev.sni
  // routes depend on upstreams (upstream_id); global rules on nothing else: rebuild when any moved
  const http =
    change.full || change.changed.has('routes') || change.changed.has('upstreams') || change.changed.has('global_rules')
      ? buildHttpPlan(snapshot, pluginByName)
      : prev.http
  const consumers =
    change.full || change.changed.has('consumers')
      ? buildConsumerIndex([...snapshot.objects.consumers.values()].map((e) => e.value), deps.consumerCerts)
      : prev.consumers
  return { version: prev.version + 1, snapshot, sni, http, consumers }
}
