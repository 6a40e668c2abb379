import { useEffect, useState } from 'preact/hooks'
import { api } from './api.js'
import { day, daysLeft, URGENCY_COLOUR, urgencyOf, type CertificatesView } from './util.js'

/** One thing that expires: a server certificate, a client CA, a consumer certificate or a CRL's nextUpdate. */
interface Item {
  readonly kind: 'server' | 'client-ca' | 'consumer' | 'crl'
  readonly id: string
  readonly label: string
  readonly at: string
}

const HORIZON = 90

/** A label cut to fit the chart's left column (the whole text is in the bar's tooltip). */
const clip = (s: string, n: number): string => (s.length > n ? `${s.slice(0, n - 1)}…` : s)

function itemsOf(v: CertificatesView): Item[] {
  const out: Item[] = []
  for (const s of v.ssls) {
    for (const c of s.certs) out.push({ kind: 'server', id: s.id, label: `${s.snis.join(', ') || s.id} — ${c.subject}`, at: c.notAfter })
    for (const c of s.client?.ca ?? []) out.push({ kind: 'client-ca', id: s.id, label: c.subject, at: c.notAfter })
    for (const c of s.client?.crl ?? []) if (c.nextUpdate) out.push({ kind: 'crl', id: s.id, label: `CRL of ${c.issuer}`, at: c.nextUpdate })
  }
  for (const c of v.consumers) for (const x of c.certs) out.push({ kind: 'consumer', id: c.username, label: x.subject, at: x.notAfter })
  return out.sort((a, b) => Date.parse(a.at) - Date.parse(b.at))
}

/** Every expiry over the next 90 days as a bar chart (SVG), soonest first; later ones listed below it. */
export function ExpiryPage() {
  const [view, setView] = useState<CertificatesView | undefined>(undefined)
  const [error, setError] = useState('')
  useEffect(() => {
    api<CertificatesView>('GET', 'ui/certificates').then(setView, (e: unknown) => setError(e instanceof Error ? e.message : String(e)))
  }, [])
  if (error) return <p class="error">{error}</p>
  if (!view) return null
  const now = Date.parse(view.now)
  const items = itemsOf(view)
  const within = items.filter((i) => daysLeft(i.at, now) <= HORIZON)
  const later = items.filter((i) => daysLeft(i.at, now) > HORIZON)
  const W = 900
  const left = 330
  const row = 22
  const scale = (W - left - 20) / HORIZON
  const H = 40 + within.length * row
  return (
    <section>
      <h1>Expiry timeline (next {HORIZON} days)</h1>
      <p class="legend">
        {(['expired', 'urgent', 'soon', 'ok'] as const).map((u) => (
          <span class={`days ${u}`}>{u === 'urgent' ? '≤ 14 days' : u === 'soon' ? '≤ 30 days' : u}</span>
        ))}
      </p>
      <svg id="expiry-chart" class="chart" width={W} height={H} viewBox={`0 0 ${W} ${H}`} role="img" aria-label="expiry timeline">
        {[0, 15, 30, 45, 60, 75, 90].map((d) => (
          <g>
            <line x1={left + d * scale} x2={left + d * scale} y1={18} y2={H} class="grid" />
            <text x={left + d * scale} y={12} class="tick">
              {d === 0 ? 'today' : `${d} d`}
            </text>
          </g>
        ))}
        {within.map((it, i) => {
          const d = daysLeft(it.at, now)
          const u = urgencyOf(d)
          const y = 24 + i * row
          const w = Math.max(3, Math.min(HORIZON, Math.max(0, d)) * scale)
          return (
            <g class="item" data-kind={it.kind} data-id={it.id} data-days={d} data-urgency={u}>
              <text x={left - 8} y={y + 13} class="label">
                {clip(`${it.kind} ${it.id}: ${it.label}`, 46)}
              </text>
              <rect x={left} y={y} width={w} height={row - 6} fill={URGENCY_COLOUR[u]} rx={2}>
                <title>{`${it.kind} ${it.id}: ${it.label} — ${day(it.at)} (${d} d)`}</title>
              </rect>
              <text x={left + w + 4} y={y + 13} class="value">
                {d < 0 ? `expired ${day(it.at)}` : `${d} d · ${day(it.at)}`}
              </text>
            </g>
          )
        })}
      </svg>
      {within.length === 0 && <p class="muted">Nothing expires within {HORIZON} days.</p>}
      {later.length > 0 && (
        <>
          <h2>Later</h2>
          <ul class="later">
            {later.map((it) => (
              <li>
                {it.kind} {it.id}: {it.label} — {day(it.at)}
              </li>
            ))}
          </ul>
        </>
      )}
    </section>
  )
}
