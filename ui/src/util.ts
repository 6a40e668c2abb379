/** Days from now until `iso` (negative once passed), rounded down. */
export const daysLeft = (iso: string, nowMs: number = Date.now()): number => Math.floor((Date.parse(iso) - nowMs) / 86_400_000)

/** How urgent an expiry is: the colour class of its cell or bar. */
export type Urgency = 'expired' | 'urgent' | 'soon' | 'ok'

/** expired: passed; urgent: within 14 days; soon: within 30 (the admin warns from 30); ok: later. */
export const urgencyOf = (days: number): Urgency => (days < 0 ? 'expired' : days <= 14 ? 'urgent' : days <= 30 ? 'soon' : 'ok')

/** The colour of each urgency (the chart's bars; the table uses the same through CSS classes). */
export const URGENCY_COLOUR: Readonly<Record<Urgency, string>> = { expired: '#6a1b9a', urgent: '#c62828', soon: '#ef6c00', ok: '#2e7d32' }

/** `2026-12-07` from an ISO time. */
export const day = (iso: string): string => iso.slice(0, 10)

/** The certificate views the admin answers (GET /apisix/admin/ui/certificates). */
export interface CertFacts {
  readonly subject: string
  readonly issuer: string
  readonly notAfter: string
  readonly keyType: string
  readonly sans: readonly string[]
}
export interface SslView {
  readonly id: string
  readonly type: string
  readonly status: number
  readonly snis: readonly string[]
  readonly certs: readonly CertFacts[]
  readonly client: {
    readonly ca: readonly CertFacts[]
    readonly depth: number
    readonly skip_mtls_uri_regex: readonly string[]
    readonly crl: readonly { readonly issuer: string; readonly nextUpdate: string | null }[]
  } | null
  readonly warnings: readonly string[]
  readonly desc?: string
}
export interface CertificatesView {
  readonly now: string
  readonly ssls: readonly SslView[]
  readonly consumers: readonly { readonly username: string; readonly certs: readonly CertFacts[] }[]
}
