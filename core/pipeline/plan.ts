/**
 * The HTTP side of a generation: the route index over compiled routes, the global rules'
 * chains, and the pool keys the generation names. Built by core/derive.ts on every change;
 * compiled parts (plugin chains, upstream plans) are reused while their frozen source object is
 * unchanged (DESIGN.md §2.5: WeakMaps keyed by the frozen values).
 */
import type { Snapshot } from '../config/snapshot.js'
import type { GlobalRule } from '../resources/global-rule.js'
import type { Route } from '../resources/route.js'
import type { Upstream } from '../resources/upstream.js'
import type { PluginDef } from '../plugins/types.js'
import { compileChain, EMPTY_CHAIN, type Chain } from '../plugins/chain.js'
import { buildRouteIndex, type RouteIndex, type RouteLike, type Rejected } from '../router/route-index.js'
import { compileUpstream, timeoutsOf, type Timeouts, type UpstreamPlan } from '../proxy/upstream-plan.js'

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
}

/** The plan before the first load: no routes. */
export const emptyHttpPlan = (): HttpPlan => ({ routes: buildRouteIndex<RouteEntry>([]), global: [], poolKeys: new Set(), rejected: [] })

const chains = new WeakMap<object, Chain>()
const upstreams = new WeakMap<object, UpstreamPlan>()
/** route value → the plan of its upstream with the route's timeout, and the upstream value it came from */
const routeUpstreams = new WeakMap<object, { readonly from: object; readonly plan: UpstreamPlan }>()

function chainOf(owner: object, plugins: Route['plugins'], lookup: (name: string) => PluginDef | undefined): Chain {
  if (!plugins) return EMPTY_CHAIN
  let c = chains.get(owner)
  if (!c) chains.set(owner, (c = compileChain(plugins, lookup)))
  return c
}

function planOf(u: Readonly<Upstream>): UpstreamPlan {
  let p = upstreams.get(u)
  if (!p) upstreams.set(u, (p = compileUpstream(u)))
  return p
}

/** The route's upstream plan: with the route's own `timeout` it is a plan of its own (pools differ by connect timeout). */
function routePlan(route: Readonly<Route>, u: Readonly<Upstream>): UpstreamPlan {
  if (!route.timeout) return planOf(u)
  const hit = routeUpstreams.get(route)
  if (hit && hit.from === u) return hit.plan
  const plan = compileUpstream({ ...u, timeout: route.timeout })
  routeUpstreams.set(route, { from: u, plan })
  return plan
}

function entryOf(route: Readonly<Route> & { readonly id: string }, snapshot: Snapshot, lookup: (name: string) => PluginDef | undefined): RouteEntry {
  let upstream: UpstreamPlan | undefined
  let missing: RouteEntry['missing']
  if (route.upstream) upstream = routePlan(route, route.upstream)
  else if (route.upstream_id !== undefined) {
    const u = snapshot.objects.upstreams.get(String(route.upstream_id))?.value
    if (u) upstream = routePlan(route, u)
    else missing = { status: 502, msg: `failed to find upstream by id: ${String(route.upstream_id)}` }
  } else missing = { status: 503, msg: 'missing upstream configuration in Route or Service' }
  const chain = chainOf(route, route.plugins, lookup)
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

/** Builds the HTTP plan of a snapshot (pure apart from the caches of compiled parts). */
export function buildHttpPlan(snapshot: Snapshot, lookup: (name: string) => PluginDef | undefined): HttpPlan {
  const rejected: Rejected[] = []
  const entries: RouteEntry[] = []
  const poolKeys = new Set<string>()
  const keep = (p: UpstreamPlan | undefined): void => {
    if (p) for (const k of p.poolOptions.keys()) poolKeys.add(k)
  }
  for (const { value } of snapshot.objects.routes.values()) {
    try {
      const e = entryOf(value, snapshot, lookup)
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
      global.push(chainOf(value, (value as Readonly<GlobalRule>).plugins, lookup))
    } catch (err) {
      rejected.push({ id: value.id, reason: `global rule: ${(err as Error).message}` })
    }
  }
  const routes = buildRouteIndex(entries)
  return { routes, global: global.filter((c) => c.length > 0), poolKeys, rejected: [...rejected, ...routes.rejected] }
}
