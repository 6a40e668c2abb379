/**
 * A small per-process Prometheus registry: counters, gauges and histograms with labels, kept as
 * plain data. Each label combination gets one child object, found through a tree of Maps keyed
 * by the label values, so an increment builds no string. `snapshot()` copies the numbers into a
 * plain, JSON-safe object a worker can send over cluster IPC (see exposition.ts).
 *
 * Kept rather than prom-client, measured (t/bench/metrics-libs.mjs, node 24, prom-client 15.1.3,
 * 2M requests of one status count with 5 labels and one latency observation, 3 rounds on a busy
 * 2-core host): ours 225-695 ns per request, prom-client 2,518-3,439 ns. prom-client hashes the
 * label values into a string on every call; at ~87 µs of CPU per keep-alive request (bench
 * results) its 2.5-3 µs, paid once for the status and twice for latency, would be a 3-4% cost.
 * Its AggregatorRegistry would not save the IPC either: the primary already asks the workers
 * (core/server/workers.ts 'metrics') and merges their snapshots (exposition.ts).
 */

/** How the primary combines one family's series across workers. */
export type MergeRule = 'sum' | 'max' | 'min'

/** A label value as the caller has it; numbers are rendered with String(). */
export type LabelValue = string | number

/** A plain counter or gauge series. */
export interface ValueSeries {
  readonly labels: readonly string[]
  readonly value: number
}

/** A histogram series: per-bucket (not cumulative) counts, the last one being +Inf. */
export interface HistogramSeries {
  readonly labels: readonly string[]
  readonly counts: readonly number[]
  readonly sum: number
  readonly count: number
}

interface FamilyHead {
  readonly name: string
  readonly help: string
  readonly labelNames: readonly string[]
  /** Labels left out of the rendered line when their value is '' (Prometheus treats both alike). */
  readonly optional?: readonly string[]
}

/** One family as plain data. */
export type FamilySnapshot =
  | (FamilyHead & { readonly type: 'counter' | 'gauge'; readonly merge: MergeRule; readonly series: readonly ValueSeries[] })
  | (FamilyHead & {
      readonly type: 'histogram'
      readonly merge: 'sum'
      readonly buckets: readonly number[]
      readonly series: readonly HistogramSeries[]
    })

/** Everything one process (or the merge of several) knows, as JSON-safe plain data. */
export interface MetricsSnapshot {
  readonly families: readonly FamilySnapshot[]
}

/** Label values that overflow a family's series cap are counted under this value in every label. */
export const OVERFLOW_LABEL = '__overflow__'

/** Options shared by every family. */
export interface FamilyOptions {
  readonly name: string
  readonly help: string
  readonly labelNames: readonly string[]
  readonly optional?: readonly string[]
  /** Above this many series, new label combinations share one overflow series (cardinality guard). */
  readonly maxSeries?: number
}

const DEFAULT_MAX_SERIES = 10_000

/** Children of one family, indexed by a tree of Maps (one level per label). */
class Children<C> {
  readonly #depth: number
  readonly #make: () => C
  readonly #max: number
  #root: Map<LabelValue, unknown> = new Map()
  #single: C | undefined
  #overflow: C | undefined
  /** Insertion-ordered list for snapshots: [label values, child]. */
  list: [readonly LabelValue[], C][] = []

  constructor(depth: number, make: () => C, max: number) {
    this.#depth = depth
    this.#make = make
    this.#max = max
  }

  get(values: readonly LabelValue[]): C {
    if (this.#depth === 0) {
      if (this.#single === undefined) {
        this.#single = this.#make()
        this.list.push([[], this.#single])
      }
      return this.#single
    }
    let node = this.#root
    const last = this.#depth - 1
    for (let i = 0; i < last; i++) {
      const v = values[i] ?? ''
      let next = node.get(v) as Map<LabelValue, unknown> | undefined
      if (next === undefined) {
        next = new Map()
        node.set(v, next)
      }
      node = next
    }
    const key = values[last] ?? ''
    const found = node.get(key) as C | undefined
    if (found !== undefined) return found
    if (this.list.length >= this.#max) return this.#overflowChild()
    const child = this.#make()
    node.set(key, child)
    this.list.push([values.slice(0, this.#depth), child])
    return child
  }

  #overflowChild(): C {
    if (this.#overflow === undefined) {
      this.#overflow = this.#make()
      this.list.push([new Array<string>(this.#depth).fill(OVERFLOW_LABEL), this.#overflow])
    }
    return this.#overflow
  }

  clear(): void {
    this.#root = new Map()
    this.#single = undefined
    this.#overflow = undefined
    this.list = []
  }
}

const labelStrings = (values: readonly LabelValue[]): string[] => values.map((v) => (typeof v === 'string' ? v : String(v)))

/** A counter child: monotonic; negative or non-finite increments are ignored. */
export interface CounterChild {
  inc(by?: number): void
}

/** A counter family. */
export class Counter {
  readonly #opts: FamilyOptions
  readonly #children: Children<{ v: number }>
  constructor(opts: FamilyOptions) {
    this.#opts = opts
    this.#children = new Children(opts.labelNames.length, () => ({ v: 0 }), opts.maxSeries ?? DEFAULT_MAX_SERIES)
  }
  /** The child for these label values (cache it on hot paths). */
  labels(values: readonly LabelValue[]): CounterChild {
    const c = this.#children.get(values)
    return { inc: (by = 1) => void (by >= 0 && by !== Infinity && (c.v += by)) }
  }
  /** Adds `by` (default 1) to the series with these label values. */
  inc(values: readonly LabelValue[], by = 1): void {
    if (!(by >= 0) || by === Infinity) return
    this.#children.get(values).v += by
  }
  /** This family as plain data. */
  snapshot(): FamilySnapshot {
    const series = this.#children.list.map(([l, c]) => ({ labels: labelStrings(l), value: c.v }))
    return { ...head(this.#opts), type: 'counter', merge: 'sum', series }
  }
}

/** A gauge family; `merge` says how the primary combines workers' values. */
export class Gauge {
  readonly #opts: FamilyOptions
  readonly #merge: MergeRule
  readonly #children: Children<{ v: number }>
  constructor(opts: FamilyOptions & { readonly merge: MergeRule }) {
    this.#opts = opts
    this.#merge = opts.merge
    this.#children = new Children(opts.labelNames.length, () => ({ v: 0 }), opts.maxSeries ?? DEFAULT_MAX_SERIES)
  }
  /** Sets the series with these label values; non-finite values are ignored. */
  set(values: readonly LabelValue[], value: number): void {
    if (!Number.isFinite(value)) return
    this.#children.get(values).v = value
  }
  /** Drops every series (for gauges whose whole set is replaced at once). */
  reset(): void {
    this.#children.clear()
  }
  /** This family as plain data. */
  snapshot(): FamilySnapshot {
    const series = this.#children.list.map(([l, c]) => ({ labels: labelStrings(l), value: c.v }))
    return { ...head(this.#opts), type: 'gauge', merge: this.#merge, series }
  }
}

interface HistogramData {
  counts: number[]
  sum: number
  count: number
}

/** A histogram child. */
export interface HistogramChild {
  observe(value: number): void
}

/** A histogram family with fixed upper bounds (ascending, +Inf implied). */
export class Histogram {
  readonly #opts: FamilyOptions
  readonly #buckets: readonly number[]
  readonly #children: Children<HistogramData>
  constructor(opts: FamilyOptions & { readonly buckets: readonly number[] }) {
    for (let i = 1; i < opts.buckets.length; i++)
      if (!((opts.buckets[i] as number) > (opts.buckets[i - 1] as number))) throw new RangeError(`${opts.name}: buckets must ascend`)
    this.#opts = opts
    this.#buckets = [...opts.buckets]
    const n = opts.buckets.length + 1
    this.#children = new Children(
      opts.labelNames.length,
      () => ({ counts: new Array<number>(n).fill(0), sum: 0, count: 0 }),
      opts.maxSeries ?? DEFAULT_MAX_SERIES,
    )
  }
  /** The child for these label values (cache it on hot paths). */
  labels(values: readonly LabelValue[]): HistogramChild {
    const h = this.#children.get(values)
    return { observe: (v) => observeInto(h, this.#buckets, v) }
  }
  /** Records one observation; NaN is ignored. */
  observe(values: readonly LabelValue[], value: number): void {
    observeInto(this.#children.get(values), this.#buckets, value)
  }
  /** This family as plain data. */
  snapshot(): FamilySnapshot {
    const series = this.#children.list.map(([l, h]) => ({ labels: labelStrings(l), counts: [...h.counts], sum: h.sum, count: h.count }))
    return { ...head(this.#opts), type: 'histogram', merge: 'sum', buckets: this.#buckets, series }
  }
}

function observeInto(h: HistogramData, buckets: readonly number[], value: number): void {
  if (Number.isNaN(value)) return
  let i = 0
  // Linear scan: the gateway's histograms have ~15 bounds and most observations land low.
  while (i < buckets.length && value > (buckets[i] as number)) i++
  h.counts[i] = (h.counts[i] as number) + 1
  h.sum += value
  h.count++
}

function head(o: FamilyOptions): FamilyHead {
  return o.optional === undefined
    ? { name: o.name, help: o.help, labelNames: o.labelNames }
    : { name: o.name, help: o.help, labelNames: o.labelNames, optional: o.optional }
}
