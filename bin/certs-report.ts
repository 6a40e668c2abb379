/**
 * Pure formatting for `bin/apisix certs` (CONTRACT.md "The command line"): filter and order the
 * certificate records, print them as an aligned table or a JSON array, and pick the exit code.
 * Reading etcd and parsing PEM happen in bin/certs.ts.
 */
import type { CertKind, CertRecord } from '../core/x509/records.js'
import { fail, ok, type Result } from '../core/schema/decode.js'

/** One line of the report, with the JSON keys of `--json`. */
export interface ReportRow {
  /** ISO 8601 UTC, whole seconds: `2027-01-01T00:00:00Z`. */
  readonly not_after: string
  /** Whole days until not-after, rounded down: negative exactly when the certificate has expired. */
  readonly days_left: number
  readonly kind: CertKind
  readonly id: string
  readonly names: readonly string[]
  /** RFC 2253. */
  readonly subject: string
}

const DAY_MS = 86_400_000
const HOUR_MS = 3_600_000

/** `--expiring-within` as milliseconds: `N` followed by `d` (days) or `h` (hours). */
export function parseWithin(text: string): Result<number> {
  const m = /^(\d{1,6})([dh])$/.exec(text)
  if (m === null) return fail(`--expiring-within: ${JSON.stringify(text)} is not a duration like 30d or 12h`)
  return ok(Number(m[1]) * (m[2] === 'd' ? DAY_MS : HOUR_MS))
}

const KIND_ORDER: Readonly<Record<CertKind, number>> = { server: 0, 'client-ca': 1, consumer: 2, crl: 3 }

const isoSeconds = (d: Date): string => `${d.toISOString().slice(0, 19)}Z`

/**
 * The rows to print: soonest not-after first (ties by kind, id, subject, so the order is
 * stable), keeping only those that expire within `withinMs` of `now` when it is given; a
 * certificate already expired is always within.
 */
export function buildReport(records: readonly CertRecord[], now: Date, withinMs?: number): ReportRow[] {
  const limit = withinMs === undefined ? Infinity : now.getTime() + withinMs
  return records
    .filter((r) => r.notAfter.getTime() <= limit)
    .sort(
      (a, b) =>
        a.notAfter.getTime() - b.notAfter.getTime() ||
        KIND_ORDER[a.kind] - KIND_ORDER[b.kind] ||
        compare(a.id, b.id) ||
        compare(a.subject, b.subject),
    )
    .map((r) => ({
      not_after: isoSeconds(r.notAfter),
      days_left: Math.floor((r.notAfter.getTime() - now.getTime()) / DAY_MS),
      kind: r.kind,
      id: r.id,
      names: r.names,
      subject: r.subject,
    }))
}

const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

const HEADER = ['NOT_AFTER', 'DAYS_LEFT', 'KIND', 'ID', 'NAMES', 'SUBJECT'] as const

/** The table: a header line, then one line per row, columns padded to align, two spaces apart. */
export function formatTable(rows: readonly ReportRow[]): string {
  const cells = [
    [...HEADER],
    ...rows.map((r) => [r.not_after, String(r.days_left), r.kind, r.id, r.names.length === 0 ? '-' : r.names.join(','), r.subject]),
  ]
  const widths = HEADER.map((_, col) => Math.max(...cells.map((line) => (line[col] as string).length)))
  return cells
    .map((line) =>
      line
        .map((cell, col) => (col === line.length - 1 ? cell : cell.padEnd(widths[col] as number)))
        .join('  ')
        .trimEnd(),
    )
    .map((line) => `${line}\n`)
    .join('')
}

/** `--json`: a JSON array of the rows, one line. */
export const formatJson = (rows: readonly ReportRow[]): string => `${JSON.stringify(rows)}\n`

/**
 * The command's exit code for what it listed: 1 when any listed certificate has expired (its
 * not-after is before now; a certificate is valid through that second), else 0.
 */
export const reportExitCode = (rows: readonly ReportRow[]): 0 | 1 => (rows.some((r) => r.days_left < 0) ? 1 : 0)
