/**
 * Route-matching cost: the same lookups against 10 and 10,000 routes (exact paths, prefixes,
 * hosts, methods), in process. The index promises a cost that does not grow with the count.
 */
import { buildRouteIndex, type RouteLike } from '../../core/router/route-index.js'

/** Routes of the mix a large deployment has: a third exact, a third prefixes, a third host-bound. */
export function makeRoutes(n: number): RouteLike[] {
  const out: RouteLike[] = []
  for (let i = 0; i < n; i++) {
    const k = i % 3
    if (k === 0) out.push({ id: String(i), uri: `/svc${i}/items`, methods: ['GET', 'POST'] })
    else if (k === 1) out.push({ id: String(i), uri: `/api/v${i}/*` })
    else out.push({ id: String(i), uri: '/*', hosts: [`h${i}.example.com`, `*.w${i}.example.com`] })
  }
  return out
}

/** ns per match over `iterations` lookups cycling through a request mix (hits and misses). */
export function measureMatch(n: number, iterations = 300_000): { nsPerMatch: number; hits: number } {
  const index = buildRouteIndex(makeRoutes(n))
  const varOf = (): undefined => undefined
  const reqs = Array.from({ length: 64 }, (_, j) => {
    const i = Math.floor((j * 7919) % n)
    const k = j % 4
    const path = k === 0 ? `/svc${i - (i % 3)}/items` : k === 1 ? `/api/v${i - (i % 3) + 1}/x/y` : k === 2 ? '/anything' : '/nope/none'
    const host = k === 2 ? `a.w${i - (i % 3) + 2}.example.com` : 'other.example.org'
    return { method: 'GET', host, path, remoteAddr: '10.0.0.1', varOf }
  })
  let hits = 0
  for (let i = 0; i < 20_000; i++) index.match(reqs[i % reqs.length]!) // warm up
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < iterations; i++) if (index.match(reqs[i % reqs.length]!)) hits++
  const ns = Number(process.hrtime.bigint() - t0)
  return { nsPerMatch: ns / iterations, hits }
}
