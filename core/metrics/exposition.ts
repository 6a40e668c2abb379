/**
 * Pure functions over metrics snapshots: the primary merges the workers' snapshots, then
 * renders the result in Prometheus text exposition format 0.0.4.
 */
import type { FamilySnapshot, HistogramSeries, MergeRule, MetricsSnapshot, ValueSeries } from './registry.js'

/** The Content-Type of a scrape answer. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

const seriesKey = (labels: readonly string[]): string => labels.join('\u0000')

const sameList = (a: readonly unknown[], b: readonly unknown[]): boolean => a.length === b.length && a.every((x, i) => x === b[i])

function combine(rule: MergeRule, a: number, b: number): number {
  if (rule === 'sum') return a + b
  return rule === 'max' ? Math.max(a, b) : Math.min(a, b)
}

interface Acc {
  readonly family: FamilySnapshot
  readonly series: Map<string, ValueSeries | HistogramSeries>
}

/**
 * Combines workers' snapshots into one. Counters and histograms are summed series by series;
 * a gauge follows its family's rule (sum, max or min) over the workers that report that series.
 * Families keep the order in which they first appear; a family whose shape (type, label names,
 * buckets) differs from the first one seen is skipped in the later snapshot.
 */
export function mergeSnapshots(snapshots: readonly MetricsSnapshot[]): MetricsSnapshot {
  const accs = new Map<string, Acc>()
  for (const snap of snapshots) {
    for (const fam of snap.families) {
      let acc = accs.get(fam.name)
      if (acc === undefined) {
        acc = { family: fam, series: new Map() }
        accs.set(fam.name, acc)
      } else if (!sameShape(acc.family, fam)) continue
      mergeFamily(acc, fam)
    }
  }
  const families: FamilySnapshot[] = []
  for (const { family, series } of accs.values()) {
    families.push(
      family.type === 'histogram'
        ? { ...family, series: [...series.values()] as HistogramSeries[] }
        : { ...family, series: [...series.values()] as ValueSeries[] },
    )
  }
  return { families }
}

function sameShape(a: FamilySnapshot, b: FamilySnapshot): boolean {
  if (a.type !== b.type || a.merge !== b.merge || !sameList(a.labelNames, b.labelNames)) return false
  return a.type !== 'histogram' || (b.type === 'histogram' && sameList(a.buckets, b.buckets))
}

function mergeFamily(acc: Acc, fam: FamilySnapshot): void {
  if (fam.type === 'histogram') {
    for (const s of fam.series) {
      const key = seriesKey(s.labels)
      const prev = acc.series.get(key) as HistogramSeries | undefined
      acc.series.set(
        key,
        prev === undefined
          ? { labels: s.labels, counts: [...s.counts], sum: s.sum, count: s.count }
          : { labels: s.labels, counts: prev.counts.map((c, i) => c + (s.counts[i] ?? 0)), sum: prev.sum + s.sum, count: prev.count + s.count },
      )
    }
    return
  }
  for (const s of fam.series) {
    const key = seriesKey(s.labels)
    const prev = acc.series.get(key) as ValueSeries | undefined
    acc.series.set(key, prev === undefined ? { labels: s.labels, value: s.value } : { labels: s.labels, value: combine(fam.merge, prev.value, s.value) })
  }
}

/** A sample value as Prometheus writes it (`+Inf`, `-Inf`, `NaN`, or a Go-parsable float). */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN'
  if (v === Infinity) return '+Inf'
  if (v === -Infinity) return '-Inf'
  return String(v)
}

/** Escapes a label value: backslash, double quote and line feed. */
export const escapeLabelValue = (v: string): string => v.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`))

/** Escapes HELP text: backslash and line feed. */
export const escapeHelp = (v: string): string => v.replace(/[\\\n]/g, (c) => (c === '\n' ? '\\n' : '\\\\'))

function labelBlock(names: readonly string[], values: readonly string[], optional: readonly string[] | undefined, extra?: string): string {
  const parts: string[] = []
  for (let i = 0; i < names.length; i++) {
    const name = names[i] as string
    const value = values[i] ?? ''
    if (value === '' && optional?.includes(name)) continue
    parts.push(`${name}="${escapeLabelValue(value)}"`)
  }
  if (extra !== undefined) parts.push(extra)
  return parts.length === 0 ? '' : `{${parts.join(',')}}`
}

/** Renders a snapshot as Prometheus text format 0.0.4 (HELP and TYPE for every family, even an empty one). */
export function renderPrometheus(snap: MetricsSnapshot): string {
  const out: string[] = []
  for (const fam of snap.families) {
    out.push(`# HELP ${fam.name} ${escapeHelp(fam.help)}`, `# TYPE ${fam.name} ${fam.type}`)
    if (fam.type !== 'histogram') {
      for (const s of fam.series) out.push(`${fam.name}${labelBlock(fam.labelNames, s.labels, fam.optional)} ${formatValue(s.value)}`)
      continue
    }
    const bounds = [...fam.buckets.map(formatValue), '+Inf']
    for (const s of fam.series) {
      let cumulative = 0
      for (let i = 0; i < bounds.length; i++) {
        cumulative += s.counts[i] ?? 0
        out.push(`${fam.name}_bucket${labelBlock(fam.labelNames, s.labels, fam.optional, `le="${bounds[i] as string}"`)} ${cumulative}`)
      }
      const labels = labelBlock(fam.labelNames, s.labels, fam.optional)
      out.push(`${fam.name}_sum${labels} ${formatValue(s.sum)}`, `${fam.name}_count${labels} ${s.count}`)
    }
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`
}
