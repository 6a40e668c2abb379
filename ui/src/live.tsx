import { useEffect, useState } from 'preact/hooks'
import { api } from './api.js'

/** What GET /apisix/admin/ui/tls answers: the counters summed over the workers, at `time` (epoch s). */
interface Counters {
  readonly time: number
  readonly handshakes: Readonly<Record<string, number>>
  readonly client_cert_failures: Readonly<Record<string, number>>
}

/** Per-second rates between two readings of the counters. */
interface Rates {
  readonly time: number
  readonly handshakes: Record<string, number>
  readonly failures: Record<string, number>
}

const EVERY_MS = 3000
const KEEP = 40
const RESULTS = ['ok', 'resumed', 'refused', 'error']
const REASONS = ['no_certificate', 'untrusted', 'expired', 'depth', 'revoked', 'crl_expired', 'sni_host_mismatch']
const COLOURS = ['#2e7d32', '#1565c0', '#c62828', '#6d4c41', '#ef6c00', '#6a1b9a', '#00838f']

function rate(a: Readonly<Record<string, number>>, b: Readonly<Record<string, number>>, secs: number): Record<string, number> {
  const out: Record<string, number> = {}
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) out[k] = Math.max(0, ((b[k] ?? 0) - (a[k] ?? 0)) / secs)
  return out
}

function Lines(props: { id: string; series: readonly Rates[]; pick: (r: Rates) => Record<string, number>; keys: readonly string[] }) {
  const W = 600
  const H = 160
  const max = Math.max(1, ...props.series.flatMap((r) => props.keys.map((k) => props.pick(r)[k] ?? 0)))
  const x = (i: number) => 30 + (i * (W - 40)) / Math.max(1, KEEP - 1)
  const y = (v: number) => H - 20 - (v / max) * (H - 40)
  return (
    <svg id={props.id} class="chart" width={W} height={H} viewBox={`0 0 ${W} ${H}`}>
      <text x={4} y={14} class="tick start">
        {max.toFixed(1)}/s
      </text>
      <line x1={30} x2={W - 10} y1={H - 20} y2={H - 20} class="grid" />
      {props.keys.map((k, ki) => (
        <polyline fill="none" stroke={COLOURS[ki % COLOURS.length]} stroke-width={2} points={props.series.map((r, i) => `${x(i)},${y(props.pick(r)[k] ?? 0)}`).join(' ')} />
      ))}
    </svg>
  )
}

function Table(props: { id: string; keys: readonly string[]; last: Record<string, number> | undefined; totals: Readonly<Record<string, number>> | undefined }) {
  return (
    <table class="rates" id={props.id}>
      <thead>
        <tr>
          <th />
          <th>per second</th>
          <th>total</th>
        </tr>
      </thead>
      <tbody>
        {props.keys.map((k, i) => (
          <tr data-key={k}>
            <td>
              <span class="swatch" style={{ background: COLOURS[i % COLOURS.length] }} /> {k}
            </td>
            <td class="rate">{(props.last?.[k] ?? 0).toFixed(2)}</td>
            <td class="total">{props.totals?.[k] ?? 0}</td>
          </tr>
        ))}
      </tbody>
    </table>
  )
}

/** Handshakes per second by result and client-certificate failures by reason, read every few seconds. */
export function LiveTlsPage() {
  const [latest, setLatest] = useState<Counters | undefined>(undefined)
  const [series, setSeries] = useState<Rates[]>([])
  const [error, setError] = useState('')
  useEffect(() => {
    let prev: Counters | undefined
    let stopped = false
    const tick = async () => {
      try {
        const c = await api<Counters>('GET', 'ui/tls')
        if (stopped) return
        setError('')
        setLatest(c)
        if (prev && c.time > prev.time) {
          const secs = c.time - prev.time
          const r: Rates = { time: c.time, handshakes: rate(prev.handshakes, c.handshakes, secs), failures: rate(prev.client_cert_failures, c.client_cert_failures, secs) }
          setSeries((s) => [...s, r].slice(-KEEP))
        }
        prev = c
      } catch (e) {
        if (!stopped) setError(e instanceof Error ? e.message : String(e))
      }
    }
    void tick()
    const timer = setInterval(() => void tick(), EVERY_MS)
    return () => {
      stopped = true
      clearInterval(timer)
    }
  }, [])
  const last = series[series.length - 1]
  return (
    <section>
      <h1>Live TLS</h1>
      <p class="muted">Read from the gateway's own counters every {EVERY_MS / 1000} s (apisix_tls_handshakes_total, apisix_client_cert_failures_total).</p>
      {error && <p class="error">{error}</p>}
      <div class="cols">
        <div class="card">
          <h2>Handshakes by result</h2>
          <Lines id="chart-handshakes" series={series} pick={(r) => r.handshakes} keys={RESULTS} />
          <Table id="table-handshakes" keys={RESULTS} last={last?.handshakes} totals={latest?.handshakes} />
        </div>
        <div class="card">
          <h2>Client-certificate failures by reason</h2>
          <Lines id="chart-failures" series={series} pick={(r) => r.failures} keys={REASONS} />
          <Table id="table-failures" keys={REASONS} last={last?.failures} totals={latest?.client_cert_failures} />
        </div>
      </div>
    </section>
  )
}
