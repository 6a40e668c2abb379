/**
 * APISIX's default HTTP router, `radixtree_host_uri` (spec §2.5), compiled once per config
 * generation. A lookup walks the request's host and path once; its cost does not depend on how
 * many routes there are (exact paths and hosts are Map lookups, prefixes one prefix-tree walk).
 */
import { buildCidrSet } from '../net/cidr.js'
import type { CidrSet } from '../net/cidr.js'
import { compileVars } from '../resources/vars.js'
import type { Expr, VarReader } from '../resources/vars.js'
import { buildPrefixTree } from './radix.js'
import type { PrefixTree } from './radix.js'
import { compileUri } from './uri.js'

/** The fields of an APISIX route object the router reads (core/resources/route.ts's Route fits it). */
export interface RouteLike {
  readonly id?: string | number | undefined
  readonly uri?: string | undefined
  readonly uris?: readonly string[] | undefined
  readonly host?: string | undefined
  readonly hosts?: readonly string[] | undefined
  readonly methods?: readonly string[] | undefined
  readonly priority?: number | undefined
  readonly vars?: readonly unknown[] | undefined
  readonly remote_addr?: string | undefined
  readonly remote_addrs?: readonly string[] | undefined
  readonly status?: number | undefined
}

/** One request as the router sees it. */
export interface MatchInput {
  readonly method: string
  /** nginx `$host`: lower-case, no port, no trailing dot (normalizeHost). */
  readonly host: string
  /** nginx `$uri` (parseTarget's path). */
  readonly path: string
  readonly remoteAddr: string
  readonly varOf: VarReader
}

/** A route that could not be indexed, and why (bad data that bypassed the admin). */
export interface Rejected {
  readonly id: string | number | undefined
  readonly reason: string
}

/** The compiled router of one generation. */
export interface RouteIndex<R extends RouteLike> {
  /** The route APISIX would pick for this request, or undefined (→ 404). */
  match(req: MatchInput): R | undefined
  /** Routes left out because they failed to compile. */
  readonly rejected: readonly Rejected[]
}

/** A route's filters, compiled once and shared by all its paths and hosts. */
interface Filters<R> {
  readonly route: R
  readonly methods: ReadonlySet<string> | undefined
  readonly cidr: CidrSet | undefined
  readonly vars: Expr | undefined
  readonly priority: number
  readonly seq: number
}

interface Candidate<R> {
  readonly f: Filters<R>
  readonly originalLength: number
  readonly full: RegExp | undefined
}

/** radixtree's sort_route plus its in-order insertion: priority desc, longer path_org, then first inserted. */
function ordered<R>(a: Candidate<R>, b: Candidate<R>): number {
  return b.f.priority - a.f.priority || b.originalLength - a.originalLength || a.f.seq - b.f.seq
}

/** The paths of one host group (or of the host-less routes): one radixtree instance. */
class UriTable<R> {
  readonly exact = new Map<string, Candidate<R>[]>()
  readonly prefix: PrefixTree<Candidate<R>[]> = buildPrefixTree()
  readonly #lists: Candidate<R>[][] = []

  add(f: Filters<R>, path: string): void {
    const p = compileUri(path)
    const c: Candidate<R> = { f, originalLength: p.original.length, full: p.full }
    const make = (): Candidate<R>[] => {
      const l: Candidate<R>[] = []
      this.#lists.push(l)
      return l
    }
    const list = p.prefix ? this.prefix.upsert(p.key, make) : getOrMakeWith(this.exact, p.key, make)
    list.push(c)
  }

  /** Orders every candidate list once all routes are in (Array.prototype.sort is stable). */
  sort(): void {
    for (const l of this.#lists) l.sort(ordered)
  }

  match(req: MatchInput): R | undefined {
    const exact = this.exact.get(req.path)
    if (exact) {
      // radixtree checks no path parameters on exact hits
      for (const c of exact) if (passes(c.f, req)) return c.f.route
    }
    if (this.prefix.size === 0) return undefined
    return this.prefix.firstOfPrefixes(req.path, firstPassing<R>, req)
  }
}

/** The first candidate of one prefix's list that the request satisfies. */
function firstPassing<R>(list: readonly Candidate<R>[], req: MatchInput): R | undefined {
  for (const c of list) if (passes(c.f, req) && (c.full === undefined || c.full.test(req.path))) return c.f.route
  return undefined
}

const matchTable = <R>(t: UriTable<R>, req: MatchInput): R | undefined => t.match(req)

function getOrMakeWith<K, V>(m: Map<K, V>, k: K, make: () => V): V {
  let v = m.get(k)
  if (v === undefined) m.set(k, (v = make()))
  return v
}

/** radixtree's match_route_opts, minus hosts (the host router handles those) and filter_func. */
function passes<R>(f: Filters<R>, req: MatchInput): boolean {
  if (f.methods && !f.methods.has(req.method)) return false
  if (f.cidr && !f.cidr.has(req.remoteAddr)) return false
  if (f.vars && !f.vars(req.varOf)) return false
  return true
}

function compileFilters<R extends RouteLike>(route: R, seq: number): Filters<R> {
  const addrs = route.remote_addrs ?? (route.remote_addr !== undefined ? [route.remote_addr] : undefined)
  return {
    route,
    // an empty list sets no method bit in radixtree, which means "any method"
    methods: route.methods && route.methods.length > 0 ? new Set(route.methods) : undefined,
    cidr: addrs ? buildCidrSet(addrs) : undefined,
    vars: route.vars ? compileVars(route.vars) : undefined,
    priority: route.priority ?? 0,
    seq,
  }
}

/** Wildcard hosts are stored reversed, so `*.foo.com` is the prefix `moc.oof.` of a reversed host. */
const reverse = (s: string): string => [...s].reverse().join('')

/**
 * Builds the router of one generation from the config's routes in their stored order
 * (the order breaks ties). Only routes with `status` absent or 1 take part.
 */
export function buildRouteIndex<R extends RouteLike>(routes: Iterable<R>): RouteIndex<R> {
  const exactHosts = new Map<string, UriTable<R>>()
  const wildHosts: PrefixTree<UriTable<R>> = buildPrefixTree()
  const noHost = new UriTable<R>()
  const rejected: Rejected[] = []
  const tables: UriTable<R>[] = [noHost]
  let seq = 0
  for (const route of routes) {
    if (route.status !== undefined && route.status !== 1) continue
    let f: Filters<R>
    try {
      f = compileFilters(route, seq++)
    } catch (e) {
      rejected.push({ id: route.id, reason: (e as Error).message })
      continue
    }
    // APISIX reads `uris or uri` and `hosts or host` (apisix/http/router/radixtree_host_uri.lua)
    const paths = route.uris ?? (route.uri !== undefined ? [route.uri] : [])
    const hosts = route.hosts ?? (route.host !== undefined ? [route.host] : undefined)
    const targets: UriTable<R>[] = []
    if (!hosts) targets.push(noHost)
    else
      for (const raw of hosts) {
        // apisix/router.lua lower-cases route hosts when it loads them
        const h = raw.toLowerCase()
        const make = (): UriTable<R> => {
          const t = new UriTable<R>()
          tables.push(t)
          return t
        }
        if (h.startsWith('*')) targets.push(wildHosts.upsert(reverse(h.slice(1)), make))
        else targets.push(getOrMakeWith(exactHosts, h, make))
      }
    for (const t of new Set(targets)) for (const p of paths) t.add(f, p)
  }
  for (const t of tables) t.sort()
  const anyHost = exactHosts.size > 0 || wildHosts.size > 0
  return {
    rejected,
    match(req) {
      if (anyHost) {
        // exact host first, then wildcard suffixes longest first; the first group with a match wins
        const exact = exactHosts.get(req.host)
        const hit = exact?.match(req)
        if (hit) return hit
        if (wildHosts.size > 0) {
          const r = wildHosts.firstOfReversedPrefixes(req.host, matchTable<R>, req)
          if (r) return r
        }
      }
      return noHost.match(req)
    },
  }
}
