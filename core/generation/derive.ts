import type { Snapshot } from '../config/snapshot.js'
import type { Change } from '../config/store.js'
import type { ResourceName } from '../etcd/keys.js'
import type { Generation } from './generation.js'
import { buildSniIndex, updateSniIndex, type SniIndex } from '../tls/sni-index.js'
import type { PolicyCache, SslValue, TlsPolicy } from '../tls/contexts.js'
import { buildHttpPlan, type PlanCache } from './http-plan.js'
import { pluginByName } from '../plugins/registry.js'
import { buildConsumerIndex, type NormalizedCert } from '../plugins/consumer-index.js'

/**
 * What building a generation keeps from one generation to the next, besides the previous
 * generation itself. Made by the caller: one per worker (core/main.ts), one per explain listing
 * (core/explain/view.ts). Every part is keyed by a frozen object of the snapshot, so an unchanged
 * object is found again and a replaced one lets its entry go.
 */
export interface BuildDeps {
  /** a TLS policy (and, once built, its tls.Server) per ssl object entry */
  readonly policies: PolicyCache
  /** compiled plugin chains and upstream plans (core/generation/http-plan.ts) */
  readonly plans: PlanCache
  /** decoded certificates per consumer object */
  readonly consumerCerts: WeakMap<object, readonly NormalizedCert[]>
  /** apisix.data_encryption.keyring, for upstream client keys */
  readonly keyring: readonly string[]
}

const serves = (ssl: SslValue): boolean => ssl.status !== 0 && ssl.type !== 'client'

/**
 * The SNI index of a snapshot: one policy per ssl object with status 1 and type server. A
 * policy is reused while its entry is unchanged. Given `since` (the previous generation and the
 * ids of the ssl objects put or deleted since, as core/config/apply.ts names them), only those
 * objects are visited: a change costs O(changed objects), not O(all objects), and an object
 * changed through the watch has its server built now, so no handshake waits for it (DESIGN.md
 * §2.5). Without `since` (a full load) every object is visited and servers are built on first use.
 */
export function deriveSni(
  snapshot: Snapshot,
  policies: PolicyCache,
  since?: { readonly prev: Pick<Generation, 'snapshot' | 'sni'>; readonly ids: Iterable<string> },
): SniIndex<TlsPolicy> {
  if (since) {
    const before = since.prev.snapshot.objects.ssls
    const after = snapshot.objects.ssls
    const removed: TlsPolicy[] = []
    const added: TlsPolicy[] = []
    for (const id of since.ids) {
      const b = before.get(id)
      const a = after.get(id)
      if (b === a) continue
      if (b && serves(b.value)) removed.push(policies.policyFor(b, false))
      if (a && serves(a.value)) added.push(policies.policyFor(a, true))
    }
    return updateSniIndex(since.prev.sni, removed, added)
  }
  const list: TlsPolicy[] = []
  for (const entry of snapshot.objects.ssls.values()) {
    if (serves(entry.value)) list.push(policies.policyFor(entry, false))
  }
  return buildSniIndex(list)
}

/**
 * Snapshot (+ the previous generation, + what changed) → the next generation, reusing unchanged
 * parts; pure apart from the caches in `deps`. The previous generation's snapshot must be the one
 * the change was applied to (core/config/store.ts publishes every change it applies), and its SNI
 * index the one derived here with the same policy cache.
 */
export function deriveGeneration(snapshot: Snapshot, prev: Generation, change: Change, deps: BuildDeps): Generation {
  const changed = (res: ResourceName): boolean => change.full || change.changed.has(res)
  const sslIds = change.full ? undefined : change.changed.get('ssls')
  const sni = change.full ? deriveSni(snapshot, deps.policies) : sslIds ? deriveSni(snapshot, deps.policies, { prev, ids: sslIds }) : prev.sni
  // routes depend on upstreams (upstream_id), and on ssls when an upstream names one
  // (tls.client_cert_id); global rules on nothing else: rebuild when any moved
  const http =
    changed('routes') || changed('upstreams') || changed('global_rules') || (prev.http.namesSsls && changed('ssls'))
      ? buildHttpPlan(snapshot, pluginByName, { keyring: deps.keyring, cache: deps.plans })
      : prev.http
  const consumers = changed('consumers')
    ? buildConsumerIndex([...snapshot.objects.consumers.values()].map((e) => e.value), deps.consumerCerts)
    : prev.consumers
  return { version: prev.version + 1, snapshot, sni, http, consumers }
}
