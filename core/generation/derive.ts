import type { Snapshot } from '../config/snapshot.js'
import type { ResourceName } from '../etcd/keys.js'
import type { Generation } from './generation.js'
import { buildSniIndex, updateSniIndex, type SniIndex } from '../tls/sni-index.js'
import type { PolicyCache, SslValue, TlsPolicy } from '../tls/contexts.js'
import { asPersistent, diffMaps } from '../collections/persistent-map.js'
import { buildHttpPlan } from './http-plan.js'
import { pluginByName } from '../plugins/registry.js'
import { buildConsumerIndex, type NormalizedCert } from '../plugins/consumer-index.js'

/** What derive needs besides the snapshot: the worker's TLS policy cache and consumer certificate cache. */
export interface DeriveDeps {
  readonly policies?: PolicyCache
  /** decoded certificates per consumer object, kept across generations (an unchanged object is the same key) */
  readonly consumerCerts?: WeakMap<object, readonly NormalizedCert[]>
  /** apisix.data_encryption.keyring, for upstream client keys */
  readonly keyring?: readonly string[]
}

const serves = (ssl: SslValue): boolean => ssl.status !== 0 && ssl.type !== 'client'

/**
 * The SNI index of a snapshot: one policy per ssl object with status 1 and type server. A
 * policy is reused while its entry is unchanged; an object changed through the watch (not a
 * full load) has its server built now, so no handshake waits for it (DESIGN.md §2.5). Given the
 * previous snapshot and its index, only the ssl entries that differ are visited (a diff of the
 * persistent maps): a change costs O(changed objects), not O(all objects). The first change
 * after a full load held in a plain Map pays one O(n) pass of Map probes instead.
 */
export function deriveSni(
  snapshot: Snapshot,
  policies: PolicyCache,
  eager: boolean,
  prev?: { readonly snapshot: Snapshot; readonly sni: SniIndex<TlsPolicy> },
): SniIndex<TlsPolicy> {
  if (prev) {
    const changes = diffMaps(prev.snapshot.objects.ssls, snapshot.objects.ssls)
    const removed: TlsPolicy[] = []
    const added: TlsPolicy[] = []
    for (const c of changes) {
      if (c.before && serves(c.before.value)) removed.push(policies.policyFor(c.before, false))
      if (c.after && serves(c.after.value)) added.push(policies.policyFor(c.after, eager))
    }
    return updateSniIndex(prev.sni, removed, added)
  }
  // a full load may hold ssls in a plain Map: its persistent copy is made now, so the first change
  // after the load (apply.ts) costs O(log n) and diffs through it, instead of converting then
  asPersistent(snapshot.objects.ssls)
  const list: TlsPolicy[] = []
  for (const entry of snapshot.objects.ssls.values()) {
    if (serves(entry.value)) list.push(policies.policyFor(entry, eager))
  }
  return buildSniIndex(list)
}

/**
 * Pure: snapshot (+ the previous generation) → the next generation, reusing unchanged parts.
 * The previous generation's SNI index must be the one derived from its snapshot (it is, when
 * every generation is derived here with the same policy cache).
 */
export function deriveGeneration(snapshot: Snapshot, prev: Generation, change: { full: boolean; changed: ReadonlySet<ResourceName> }, deps: DeriveDeps = {}): Generation {
  const sni =
    deps.policies && (change.full || change.changed.has('ssls'))
      ? deriveSni(snapshot, deps.policies, !change.full, change.full ? undefined : prev)
      : prev.sni
  // routes depend on upstreams (upstream_id), and on ssls when an upstream names one
  // (tls.client_cert_id); global rules on nothing else: rebuild when any moved
  const http =
    change.full ||
    change.changed.has('routes') ||
    change.changed.has('upstreams') ||
    change.changed.has('global_rules') ||
    (prev.http.namesSsls && change.changed.has('ssls'))
      ? buildHttpPlan(snapshot, pluginByName, { keyring: deps.keyring ?? [] })
      : prev.http
  const consumers =
    change.full || change.changed.has('consumers')
      ? buildConsumerIndex([...snapshot.objects.consumers.values()].map((e) => e.value), deps.consumerCerts)
      : prev.consumers
  return { version: prev.version + 1, snapshot, sni, http, consumers }
}
