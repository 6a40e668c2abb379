/**
 * The read views the web UI (ui/) needs beyond the CRUD API: each ssl object's certificates as
 * facts (key type, issuer, expiry, client-certificate settings, the admin's warnings), what a PEM
 * the user is about to add holds (its SANs become the SNIs offered), the caller's role, and the
 * TLS counters of the metrics families. All read only: a viewer key may call them.
 */
import { X509Certificate } from 'node:crypto'
import { dirOf } from '../core/etcd/keys.js'
import { errorAnswer } from '../core/errors.js'
import type { Ssl } from '../core/resources/ssl.js'
import { sslWarnings } from '../core/resources/ssl.js'
import { dnsNames, parseCertChain } from '../core/x509/server-cert.js'
import { parseCrlPem } from '../core/x509/crl.js'
import type { MetricsSnapshot } from '../core/metrics/registry.js'
import { consumerCertificates } from '../core/plugins/consumer-index.js'
import type { Answer, CrudDeps } from './crud.js'
import { isObject } from './patch.js'

/** One certificate as the UI shows it. */
export interface CertFacts {
  readonly subject: string
  readonly issuer: string
  readonly notAfter: string
  /** RSA, ECDSA, Ed25519 … */
  readonly keyType: string
  readonly sans: readonly string[]
}

const KEY_TYPES: Readonly<Record<string, string>> = { rsa: 'RSA', 'rsa-pss': 'RSA-PSS', ec: 'ECDSA', ed25519: 'Ed25519', ed448: 'Ed448', dsa: 'DSA' }
/** A DN for people: one line, and the characters RFC 2253 escapes shown as they are (the UI renders text, never markup). */
const oneLine = (dn: string): string =>
  dn
    .split('\n')
    .map((part) => part.replace(/\\([,+"\\<>;=# ])/g, '$1'))
    .join(', ')

/** Facts of one parsed certificate. */
export function factsOf(c: X509Certificate): CertFacts {
  const t = c.publicKey.asymmetricKeyType ?? 'unknown'
  return { subject: oneLine(c.subject), issuer: oneLine(c.issuer), notAfter: new Date(c.validTo).toISOString(), keyType: KEY_TYPES[t] ?? t, sans: dnsNames(c) }
}

const first = (pem: unknown): X509Certificate | undefined => (typeof pem === 'string' ? parseCertChain(pem)?.[0] : undefined)

/** GET /apisix/admin/ui/certificates: every ssl object and consumer certificate, as facts. */
export async function certificatesView(d: CrudDeps): Promise<Answer> {
  const now = d.now()
  const [ssls, consumers] = await Promise.all([d.store.list(dirOf(d.prefix, 'ssls')), d.store.list(dirOf(d.prefix, 'consumers'))])
  const out = ssls.flatMap((kv) => {
    if (!isObject(kv.value)) return []
    const v = kv.value as Record<string, unknown>
    const ssl = { type: 'server', status: 1, ...v } as unknown as Ssl
    const leaves = [ssl.cert, ...(ssl.certs ?? [])].map(first).filter((c): c is X509Certificate => c !== undefined)
    const client = ssl.client
    const cas = client ? (parseCertChain(client.ca) ?? []) : []
    const crlText = client ? (client as { crl?: unknown }).crl : undefined
    const crls = typeof crlText === 'string' ? parseCrlPem(crlText) : undefined
    return [
      {
        id: String(v['id'] ?? kv.key.split('/').pop()),
        type: ssl.type,
        status: ssl.status,
        snis: ssl.snis ?? (ssl.sni === undefined ? [] : [ssl.sni]),
        certs: leaves.map(factsOf),
        client: client
          ? {
              ca: cas.map(factsOf),
              depth: client.depth ?? 1,
              skip_mtls_uri_regex: client.skip_mtls_uri_regex ?? [],
              crl: crls?.ok ? crls.crls.map((c) => ({ issuer: c.issuer, nextUpdate: c.nextUpdate === undefined ? null : new Date(c.nextUpdate).toISOString() })) : [],
            }
          : null,
        warnings: sslWarnings(ssl, { leaves, clientCas: cas, crls: crls?.ok ? crls.crls : [] }, now),
        desc: typeof v['desc'] === 'string' ? v['desc'] : undefined,
        labels: isObject(v['labels']) ? v['labels'] : undefined,
      },
    ]
  })
  const cons = consumers.flatMap((kv) => {
    if (!isObject(kv.value)) return []
    const v = kv.value as { username?: string; plugins?: Record<string, unknown> }
    const certs = consumerCertificates(v as never).map(first).filter((c): c is X509Certificate => c !== undefined)
    return certs.length === 0 ? [] : [{ username: String(v.username ?? ''), certs: certs.map(factsOf) }]
  })
  return { status: 200, body: { now: new Date(now).toISOString(), ssls: out, consumers: cons } }
}

/** POST /apisix/admin/ui/inspect `{"cert": PEM}`: what the certificates of a PEM are (SANs, key type, expiry). */
export function inspectPem(body: unknown): Answer {
  const pem = isObject(body) ? body['cert'] : undefined
  if (typeof pem !== 'string') return errorAnswer('GW_ADMIN_BAD_REQUEST', 'invalid inspect request: property "cert" must be a PEM string')
  const chain = parseCertChain(pem)
  if (!chain || chain.length === 0) return errorAnswer('GW_ADMIN_BAD_REQUEST', 'invalid inspect request: property "cert" holds no readable certificate')
  return { status: 200, body: { certs: chain.map(factsOf) } }
}

/** The TLS counters the Live TLS page plots (summed over the workers), with the time they were read. */
export function tlsCounters(snapshot: MetricsSnapshot | undefined, nowMs: number): Answer {
  if (!snapshot) return errorAnswer('GW_ADMIN_NO_METRICS')
  const sum = (family: string, label: string): Record<string, number> => {
    const out: Record<string, number> = {}
    const f = snapshot.families.find((x) => x.name === family)
    if (!f || f.type === 'histogram') return out
    const at = f.labelNames.indexOf(label)
    for (const s of f.series) {
      const k = s.labels[at] ?? ''
      out[k] = (out[k] ?? 0) + s.value
    }
    return out
  }
  return {
    status: 200,
    body: {
      time: nowMs / 1000,
      handshakes: sum('apisix_tls_handshakes_total', 'result'),
      client_cert_failures: sum('apisix_client_cert_failures_total', 'reason'),
    },
  }
}
