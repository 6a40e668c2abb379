/**
 * The HTTP side of a generation: the route index over compiled routes, the global rules'
 * chains, and the pool keys the generation names. Built by core/generation/derive.ts on every change;
 * compiled parts (plugin chains, upstream plans) are reused while their frozen source object is
 * unchanged (DESIGN.md §2.5: the WeakMaps of a PlanCache, keyed by the frozen values, made by
 * the worker in core/main.ts and passed in).
 */
import type { Snapshot } from '../config/snapshot.js'
import type { GlobalRule } from '../resources/global-rule.js'
import type { Route } from '../resources/route.js'
import type { Upstream } from '../resources/upstream.js'
import type { PluginDef } from '../plugins/types.js'
import { compileChain, EMPTY_CHAIN, type Chain } from '../plugins/chain.js'
import { buildRouteIndex, type RouteIndex, type RouteLike, type Rejected } from '../router/route-index.js'
import { compileUpstream, timeoutsOf, type ClientPair, type Timeouts, type UpstreamPlan } from '../proxy/upstream-plan.js'
import { decryptKey } from '../resources/key-crypto.js'

/** A route as the request pipeline uses it: the route fields the router reads, plus compiled parts. */
export interface RouteEntry extends RouteLike {
  readonly id: string
  readonly name: string | undefined
  readonly chain: Chain
  /** `[chain]`: what the plugin runner takes when there are no global rules (made once, not per request) */
  readonly chains: readonly Chain[]
  /** the upstream plan; undefined with `missing` saying why */
  readonly upstream: UpstreamPlan | undefined
  /** why there is no upstream: 502 for an upstream_id that names nothing, 503 for none configured */
  readonly missing: { readonly status: 502 | 503; readonly msg: string } | undefined
  /** route timeout, else the upstream's, else nginx's 60 s */
  readonly timeouts: Timeouts
  readonly websocket: boolean
}

/** The HTTP plan of one generation. */
export interface HttpPlan {
  readonly routes: RouteIndex<RouteEntry>
  /** the global rules' chains, in id order */
  readonly global: readonly Chain[]
  /** every pool key an upstream of this generation names (the pools to keep open) */
  readonly poolKeys: ReadonlySet<string>
  /** routes and global rules left out, with the reason */
  readonly rejected: readonly Rejected[]
  /** whether an upstream names an ssl object (tls.client_cert_id): then a change of ssls rebuilds the plan */
  readonly namesSsls: boolean
}

/** What building the plan needs besides the snapshot. */
export interface PlanDeps {
  /** apisix.data_encryption.keyring: upstream client keys are stored encrypted */
  readonly keyring: readonly string[]
  /** the compiled parts kept from one generation to the next */
  readonly cache: PlanCache
}

/** The plan before the first load: no routes. */
export const emptyHttpPlan = (): HttpPlan => ({ routes: buildRouteIndex<RouteEntry>([]), global: [], poolKeys: new Set(), rejected: [], namesSsls: false })

/** An upstream resolved for a generation: its plan, or why the routes using it answer 502. */
export interface Resolved {
  readonly plan: UpstreamPlan | undefined
  readonly missing: { readonly status: 502; readonly msg: string } | undefined
  /** the ssl object value the plan was made with (tls.client_cert_id), to notice its change */
  readonly ssl: object | undefined
}

/**
 * Compiled parts by the frozen object they were compiled from: an unchanged object is the same
 * key in the next generation, and a replaced one lets its entry go. One per worker (core/main.ts),
 * one per explain listing.
 */
export interface PlanCache {
  /** route or global rule value → its plugin chain */
  readonly chains: WeakMap<object, Chain>
  /** upstream value → its resolution */
  readonly upstreams: WeakMap<object, Resolved>
  /** route value with its own timeout → its upstream's resolution with that timeout, and the upstream value it came from */
  readonly routeUpstreams: WeakMap<object, Resolved & { readonly from: object }>
}

/** An empty cache of compiled parts. */
export const createPlanCache = (): PlanCache => ({ chains: new WeakMap(), upstreams: new WeakMap(), routeUpstreams: new WeakMap() })

/**
 * An upstream's TLS client certificate, as APISIX resolves it per request: `tls.client_cert_id`
 * names an ssl object of type client (none, or one of type server: 502), else the inline
 * `client_cert`/`client_key`. Keys are stored encrypted with the keyring; one that does not
 * decrypt makes the upstream unusable (503, as APISIX's fetch_pkey failure).
 */
function resolveUpstream(u: Readonly<Upstream>, snapshot: Snapshot, deps: PlanDeps): Resolved {
  const tls = u.tls
  let client: ClientPair | undefined
  let unusable: string | undefined
  let ssl: object | undefined
  if (tls?.client_cert_id !== undefined) {
    const id = String(tls.client_cert_id)
    const value = snapshot.objects.ssls.get(id)?.value
    ssl = value
    if (!value) return { plan: undefined, missing: { status: 502, msg: `failed to get ssl cert: ssl id [${id}] does not exist (upstream tls.client_cert_id)` }, ssl }
    if (value.type !== 'client') return { plan: undefined, missing: { status: 502, msg: `failed to get ssl cert: ssl [${id}] is of type server, a client certificate needs type client (upstream tls.client_cert_id)` }, ssl }
    const key = decryptKey(value.key, deps.keyring)
    if (key.ok) client = { cert: value.cert, key: key.value }
    else unusable = `upstream tls.client_cert_id [${id}]: the key of the ssl object does not decrypt with apisix.data_encryption.keyring (${key.error})`
  } else if (tls?.client_cert !== undefined && tls.client_key !== undefined) {
    const key = decryptKey(tls.client_key, deps.keyring)
    if (key.ok) client = { cert: tls.client_cert, key: key.value }
    else unusable = `upstream tls.client_key does not decrypt with apisix.data_encryption.keyring (${key.error})`
  }
  return { plan: compileUpstream(u, client, unusable), missing: undefined, ssl }
}

/** Whether a resolution still holds: it named no ssl object, or the same one is there. */
const current = (r: Resolved, u: Readonly<Upstream>, snapshot: Snapshot): boolean =>
  u.tls?.client_cert_id === undefined || snapshot.objects.ssls.get(String(u.tls.client_cert_id))?.value === r.ssl

function chainOf(owner: object, plugins: Route['plugins'], lookup: (name: string) => PluginDef | undefined, { chains }: PlanCache): Chain {
  if (!plugins) return EMPTY_CHAIN
  let c = chains.get(owner)
  if (!c) chains.set(owner, (c = compileChain(plugins, lookup)))
  return c
}

function resolvedOf(u: Readonly<Upstream>, snapshot: Snapshot, deps: PlanDeps): Resolved {
  const { upstreams } = deps.cache
  let r = upstreams.get(u)
  if (!r || !current(r, u, snapshot)) upstreams.set(u, (r = resolveUpstream(u, snapshot, deps)))
  return r
}

/** The route's upstream: with the route's own `timeout` it is a plan of its own (pools differ by connect timeout). */
function routeResolved(route: Readonly<Route>, u: Readonly<Upstream>, snapshot: Snapshot, deps: PlanDeps): Resolved {
  if (!route.timeout) return resolvedOf(u, snapshot, deps)
  const { routeUpstreams } = deps.cache
  const hit = routeUpstreams.get(route)
  if (hit && hit.from === u && current(hit, u, snapshot)) return hit
  const r = { ...resolveUpstream({ ...u, timeout: route.timeout }, snapshot, deps), from: u }
  routeUpstreams.set(route, r)
  return r
}

function entryOf(route: Readonly<Route> & { readonly id: string }, snapshot: Snapshot, lookup: (name: string) => PluginDef | undefined, deps: PlanDeps): RouteEntry {
  let upstream: UpstreamPlan | undefined
  let missing: RouteEntry['missing']
  const u = route.upstream ?? (route.upstream_id !== undefined ? snapshot.objects.upstreams.get(String(route.upstream_id))?.value : undefined)
  if (u) ({ plan: upstream, missing } = routeResolved(route, u, snapshot, deps))
  else if (route.upstream_id !== undefined) missing = { status: 502, msg: `failed to find upstream by id: ${String(route.upstream_id)}` }
  else missing = { status: 503, msg: 'missing upstream configuration in Route or Service' }
  const chain = chainOf(route, route.plugins, lookup, deps.cache)
  return {
    id: route.id,
    name: route.name,
    uri: route.uri,
    uris: route.uris,
    host: route.host,
    hosts: route.hosts,
    methods: route.methods,
    priority: route.priority,
    vars: route.vars,
    remote_addr: route.remote_addr,
    remote_addrs: route.remote_addrs,
    status: route.status,
    chain,
    chains: [chain],
    upstream,
    missing,
    timeouts: timeoutsOf(route.timeout) ?? upstream?.timeouts ?? { connectMs: 60_000, sendMs: 60_000, readMs: 60_000 },
    websocket: route.enable_websocket === true,
  }
}

/** Builds the HTTP plan of a snapshot (pure apart from the cache of compiled parts it is given). */
export function buildHttpPlan(snapshot: Snapshot, lookup: (name: string) => PluginDef | undefined, deps: PlanDeps): HttpPlan {
  const rejected: Rejected[] = []
  const entries: RouteEntry[] = []
  const poolKeys = new Set<string>()
  const keep = (p: UpstreamPlan | undefined): void => {
    if (p) for (const k of p.poolOptions.keys()) poolKeys.add(k)
  }
  let namesSsls = false
  for (const { value } of snapshot.objects.upstreams.values()) if (value.tls?.client_cert_id !== undefined) namesSsls = true
  for (const { value } of snapshot.objects.routes.values()) {
    if (value.upstream?.tls?.client_cert_id !== undefined) namesSsls = true
    try {
      const e = entryOf(value, snapshot, lookup, deps)
      keep(e.upstream)
      entries.push(e)
    } catch (err) {
      rejected.push({ id: value.id, reason: (err as Error).message })
    }
  }
  const global: Chain[] = []
  const rules = [...snapshot.objects.global_rules.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  for (const { value } of rules) {
    try {
      global.push(chainOf(value, (value as Readonly<GlobalRule>).plugins, lookup, deps.cache))
    } catch (err) {
      rejected.push({ id: value.id, reason: `global rule: ${(err as Error).message}` })
    }
  }
  const routes = buildRouteIndex(entries)
  return { routes, global: global.filter((c) => c.length > 0), poolKeys, rejected: [...rejected, ...routes.rejected], namesSsls }
}
