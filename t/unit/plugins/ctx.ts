// Test helper (not a test): a hand-built RequestContext and ClientCert for plugin unit tests.
import type { ClientCert, RequestContext } from '../../../core/plugins/types.js'
import { UpstreamEdits } from '../../../core/pipeline/context.js'
import { buildClientCertFacts } from '../../../core/x509/cert.js'
import type { Issued } from '../../lib/certs.js'

/** The ClientCert of an issued certificate, as the TLS front or the header source would build it. */
export function clientCertOf(c: Issued, o: { source?: 'tls' | 'header'; verified?: boolean; verify?: string; dates?: boolean } = {}): ClientCert {
  const f = buildClientCertFacts(c.der)
  if (!f) throw new Error('unreadable test certificate')
  const verified = o.verified ?? true
  return {
    verified,
    source: o.source ?? 'tls',
    der: c.der,
    verify: o.verify ?? (verified ? 'SUCCESS' : 'FAILED:unable to get local issuer certificate'),
    fingerprint: f.fingerprint,
    serial: f.serial,
    subjectDn: f.subjectDn,
    issuerDn: f.issuerDn,
    sha256: f.sha256,
    ...(o.dates === false ? {} : { notBefore: f.notBefore, notAfter: f.notAfter }),
  }
}

/** A request context with defaults (TLS, no certificate, no consumers) and the given fields. */
export function makeCtx(o: Partial<Omit<RequestContext, 'consumer'>> & { owners?: Record<string, string> } = {}): RequestContext {
  const owners = o.owners ?? {}
  const ctx: RequestContext = {
    method: 'GET',
    uri: '/',
    query: '',
    host: 'api.test',
    remoteAddr: '127.0.0.1',
    secure: true,
    sni: 'api.test',
    headers: {},
    clientCert: undefined,
    sslClientCa: undefined,
    sslClientDepth: undefined,
    sslClientCrls: undefined,
    varOf: () => undefined,
    consumer: undefined,
    upstream: new UpstreamEdits('GET', '/', undefined),
    consumerByCertSha256: (sha) => owners[sha],
    nowMs: Date.now(),
    ...o,
  }
  return ctx
}
