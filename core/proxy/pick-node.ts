/**
 * Node pickers for an upstream, built once per upstream per generation (spec §9.3).
 *
 * `roundrobin` is nginx's smooth weighted round robin, `chash` a hash ring with virtual nodes in
 * proportion to weight, `least_conn` the lowest (active + 1) / weight. Nodes are grouped by
 * `priority` (higher first); a lower group is used only when every node above has been tried.
 * A retry passes the nodes already tried, and gets another one or undefined.
 */

/** The fields of an upstream node a picker reads. */
export interface BalanceNode {
  readonly host: string
  readonly port: number
  readonly weight: number
  readonly priority?: number | undefined
}

/** Per-request input to a pick. */
export interface PickInput<N> {
  /** chash: the hash key (from hash_on/key; the caller falls back to $remote_addr like APISIX). */
  readonly key?: string | undefined
  /** Nodes already tried by this request; never picked again. */
  readonly tried?: ReadonlySet<N> | undefined
  /** least_conn: in-flight requests on a node. */
  readonly activeOf?: ((node: N) => number) | undefined
}

/** Picks nodes for one upstream. Round robin keeps its position between picks. */
export interface Picker<N> {
  pick(input?: PickInput<N>): N | undefined
}

type GroupPicker<N> = (input: PickInput<N>) => N | undefined

const usable = <N>(n: N, tried: ReadonlySet<N> | undefined): boolean => tried === undefined || !tried.has(n)

/** nginx's ngx_http_upstream_get_peer: every eligible node gains its weight, the largest wins and pays the total. */
function smoothRoundRobin<N extends BalanceNode>(nodes: readonly N[]): GroupPicker<N> {
  const current = new Float64Array(nodes.length)
  return ({ tried }) => {
    let best = -1
    let total = 0
    for (let i = 0; i < nodes.length; i++) {
      const n = nodes[i]!
      if (n.weight <= 0 || !usable(n, tried)) continue
      current[i]! += n.weight
      total += n.weight
      if (best < 0 || current[i]! > current[best]!) best = i
    }
    if (best < 0) return undefined
    current[best]! -= total
    return nodes[best]
  }
}

function leastConn<N extends BalanceNode>(nodes: readonly N[]): GroupPicker<N> {
  return ({ tried, activeOf }) => {
    let best: N | undefined
    let bestScore = Infinity
    for (const n of nodes) {
      if (n.weight <= 0 || !usable(n, tried)) continue
      const score = ((activeOf?.(n) ?? 0) + 1) / n.weight
      if (score < bestScore) {
        best = n
        bestScore = score
      }
    }
    return best
  }
}

/** FNV-1a over UTF-16 units with murmur3's finaliser, so nearby strings land far apart on the ring. */
export function hash32(s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** Virtual nodes for the heaviest node; the others get theirs in proportion (at least one). */
const POINTS = 160

function consistentHash<N extends BalanceNode>(nodes: readonly N[]): GroupPicker<N> {
  const maxWeight = Math.max(0, ...nodes.map((n) => n.weight))
  const ring: { point: number; node: number }[] = []
  nodes.forEach((n, idx) => {
    if (n.weight <= 0) return
    const count = Math.max(1, Math.round((POINTS * n.weight) / maxWeight))
    // points depend only on the node's address, so adding or removing a node moves only its keys
    for (let i = 0; i < count; i++) ring.push({ point: hash32(`${n.host}:${n.port}#${i}`), node: idx })
  })
  ring.sort((a, b) => a.point - b.point || a.node - b.node)
  const points = Uint32Array.from(ring, (r) => r.point)
  const owners = Int32Array.from(ring, (r) => r.node)
  return ({ key, tried }) => {
    if (points.length === 0) return undefined
    const h = hash32(key ?? '')
    // first point at or after h (binary search), wrapping past the end
    let lo = 0
    let hi = points.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (points[mid]! < h) lo = mid + 1
      else hi = mid
    }
    // a retry walks on around the ring to the next node not yet tried
    for (let step = 0; step < points.length; step++) {
      const n = nodes[owners[(lo + step) % points.length]!]!
      if (usable(n, tried)) return n
    }
    return undefined
  }
}

/**
 * Builds the picker for an upstream's `type` (`roundrobin`, `chash`, `least_conn`; anything
 * else balances as roundrobin). A single node is always picked, whatever its weight and
 * whatever was tried, except by least_conn (APISIX balancer.lua's shortcut).
 */
export function buildPicker<N extends BalanceNode>(type: string, nodes: readonly N[]): Picker<N> {
  const only = nodes[0]
  if (nodes.length === 1 && only && type !== 'least_conn') return { pick: () => only }
  const make = type === 'chash' ? consistentHash : type === 'least_conn' ? leastConn : smoothRoundRobin
  const byPriority = new Map<number, N[]>()
  for (const n of nodes) {
    const p = n.priority ?? 0
    const g = byPriority.get(p)
    if (g) g.push(n)
    else byPriority.set(p, [n])
  }
  const groups = [...byPriority.entries()].sort((a, b) => b[0] - a[0]).map(([, g]) => make(g))
  return {
    pick(input = {}) {
      for (const g of groups) {
        const n = g(input)
        if (n) return n
      }
      return undefined
    },
  }
}
