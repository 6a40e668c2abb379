/**
 * "What would the data plane do with this request?" (`POST /apisix/admin/explain`), answered by
 * the data plane's own decision functions over a generation derived the data plane's way
 * (core/generation/derive.ts): the SNI index's lookup, the handshake's client-certificate verdict
 * (core/x509/cert.ts clientVerdict, over the pure chain verifier with the object's depth),
 * the path normalisation, the 421 rule (core/pipeline/authority.ts), the per-request mTLS gate
 * and its skip list (core/tls/mtls-gate.ts),
 * the route index, and the plugin chains run in the pipeline's order. Nothing is sent anywhere:
 * the answer stops where the data plane would open an upstream connection.
 */
import { X509Certificate } from 'node:crypto'
import type { Socket } from 'node:net'
import type { Generation } from '../generation/generation.js'
import type { TlsPolicy } from '../tls/contexts.js'
import type { TlsFacts } from '../tls/facts.js'
import { buildClientCertFacts, clientCertOf, clientVerdict, type ClientVerdict } from '../x509/cert.js'
import { compileTrustStore, verifyChain } from '../x509/verify.js'
import { mtlsGate, skipMatch } from '../tls/mtls-gate.js'
import { normalizeHost, normalizeSni } from '../net/hostname.js'
import { parseTarget } from '../pipeline/path.js'
import { checkHostHeader, misdirectedRequest } from '../pipeline/authority.js'
import { Context } from '../pipeline/context.js'
import type { RequestHead } from '../pipeline/http.js'
import { runChainsTraced } from '../plugins/chain.js'
import type { ClientCert, Step } from '../plugins/types.js'
import type { ExplainRequest } from './request.js'

/** One plugin phase the request went through. */
export interface PluginStep {
  readonly name: string
  readonly phase: string
  readonly result: 'pass' | 'refuse'
  readonly status?: number
  readonly key?: string
}

/** The answer of `POST /apisix/admin/explain`, field for field as CONTRACT.md names them. */
export interface ExplainAnswer {
  ssl_id: string | null
  handshake: string
  client_cert_requested: boolean
  client_verify: string
  skip_mtls_matched: string | null
  route_id: string | null
  plugins: PluginStep[]
  status: number | null
  reason: string
}

/** What explaining needs besides the request: the generation and the TLS listener's settings. */
export interface ExplainDeps {
  readonly gen: Generation
  /** `apisix.ssl.fallback_sni`, normalised */
  readonly fallbackSni: string
  readonly nowMs: number
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g

/** The certificates of a PEM chain as DER, leaf first; a string naming what could not be read. */
function chainOf(pem: string): Buffer[] | string {
  const out: Buffer[] = []
  for (const m of pem.matchAll(PEM_BLOCK)) {
    try {
      out.push(new X509Certificate(m[0]).raw)
    } catch (e) {
      return `certificate ${out.length + 1} of client_cert cannot be read: ${e instanceof Error ? e.message : String(e)}`
    }
  }
  return out.length > 0 ? out : 'client_cert holds no certificate'
}

/** The handshake under a policy that asks for a certificate: the verdict and the certificate as the pipeline sees it. */
function handshakeWith(policy: TlsPolicy & { client: NonNullable<TlsPolicy['client']> }, chain: readonly Buffer[] | undefined, nowMs: number): { v: ClientVerdict; cert: ClientCert | undefined } {
  const rules = policy.client
  const leaf = chain?.[0]
  if (!chain || !leaf) return { v: clientVerdict(rules, false, false, undefined, undefined), cert: undefined }
  const store = compileTrustStore(rules.ca)
  // the CA bundle was checked by the admin; one that does not compile verifies nothing, as in OpenSSL
  // with the object's CRLs: a revoked certificate reads FAILED:certificate revoked, as on the data plane
  const r = store.ok ? verifyChain(leaf, store.store, nowMs, undefined, rules.crls, chain.slice(1)) : undefined
  const v = clientVerdict(rules, true, r?.ok === true, r === undefined ? 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' : r.ok ? undefined : r.code, r?.ok ? r.intermediates : undefined)
  const facts = buildClientCertFacts(leaf)
  return { v, cert: facts ? clientCertOf(leaf, facts, v.authorized, v.verify) : undefined }
}

/** A request head as the pipeline reads one, for a request that is only imagined. */
function headOf(req: ExplainRequest, https: boolean): RequestHead {
  const headers: Record<string, string> = {}
  if (req.host !== undefined) headers['host'] = req.host
  const socket = { remoteAddress: req.remoteAddr, remotePort: 0, localAddress: '127.0.0.1', localPort: https ? 443 : 80 } as unknown as Socket
  return { method: req.method, url: req.uri, headers, rawHeaders: req.host === undefined ? [] : ['Host', req.host], socket }
}

const keyOf = (s: Step): string | undefined => {
  const b = s?.body
  return b && typeof b === 'object' && typeof b['key'] === 'string' ? b['key'] : undefined
}
const msgOf = (s: Step): string => {
  const b = s?.body
  if (b && typeof b === 'object' && typeof b['error_msg'] === 'string') return b['error_msg']
  return typeof b === 'string' ? b : ''
}

/** Explains one request against a generation (see the module comment). */
export async function explain(d: ExplainDeps, req: ExplainRequest): Promise<ExplainAnswer> {
  const a: ExplainAnswer = {
    ssl_id: null,
    handshake: 'ok',
    client_cert_requested: false,
    client_verify: 'NONE',
    skip_mtls_matched: null,
    route_id: null,
    plugins: [],
    status: null,
    reason: '',
  }
  const gen = d.gen
  const https = req.scheme === 'https'
  let facts: TlsFacts | undefined
  if (https) {
    const sent = req.sni === undefined ? undefined : normalizeSni(req.sni)
    const name = sent ?? d.fallbackSni
    const policy = name === '' ? undefined : gen.sni.lookup(name)
    if (!policy) {
      a.handshake = 'refused: unrecognized_name'
      a.reason = sent === undefined ? 'the client sent no SNI and apisix.ssl.fallback_sni names no ssl object' : `no ssl object serves the SNI ${sent}`
      return a
    }
    a.ssl_id = policy.id
    let clientCert: ClientCert | undefined
    let verify = 'NONE'
    if (policy.client) {
      a.client_cert_requested = true
      const chain = req.clientCert === undefined ? undefined : chainOf(req.clientCert)
      if (typeof chain === 'string') {
        a.handshake = `refused: ${chain}`
        a.reason = chain
        return a
      }
      const hs = handshakeWith(policy as TlsPolicy & { client: NonNullable<TlsPolicy['client']> }, chain, d.nowMs)
      verify = a.client_verify = hs.v.verify
      if (hs.v.refuse) {
        a.handshake = `refused: ${hs.v.reason === 'no_certificate' ? 'no client certificate' : `client certificate ${verify}`}`
        a.reason = `ssl ${policy.id} requires a verified client certificate for every request (no client.skip_mtls_uri_regex): the handshake fails`
        return a
      }
      clientCert = hs.cert
    }
    facts = { sni: sent, matchSni: name, sslId: policy.id, protocol: 'TLSv1.3', clientCert, verify, client: policy.client }
  }

  // the request pipeline, in core/pipeline/handle.ts's order
  const target = parseTarget(req.uri)
  if (!target.ok) return refused(a, 400, `bad request: ${target.reason}`)
  const badHost = req.host === undefined ? undefined : checkHostHeader(req.host)
  if (badHost) return refused(a, 400, `bad request: ${badHost}`)
  const hostHeader = target.authority ?? req.host ?? ''
  const host = normalizeHost(hostHeader)
  const skipped = facts?.client ? skipMatch(facts.client, target.path, target.rawPath) : undefined
  if (skipped) {
    // the pattern as configured (a RegExp's source escapes its slashes)
    const patterns = gen.snapshot.objects.ssls.get(facts?.sslId ?? '')?.value.client?.skip_mtls_uri_regex ?? []
    a.skip_mtls_matched = patterns.find((p) => new RegExp(p).source === skipped.source) ?? skipped.source
  }
  const gate = facts ? (misdirectedRequest(facts.sslId, host, gen.sni) ?? mtlsGate(facts, target.path, target.rawPath)) : undefined
  if (gate && 'status' in gate) return refused(a, gate.status, gate.error_msg)
  const byCert = gen.consumers.byCert
  const ctx = new Context({
    req: headOf(req, https),
    uri: target.path,
    query: target.query,
    rawPath: target.rawPath,
    host,
    tls: facts,
    nowMs: d.nowMs,
    consumerByCertSha256: (sha256) => byCert.get(sha256),
  })
  const route = gen.http.routes.match({ method: ctx.method, host, path: target.path, remoteAddr: ctx.remoteAddr, varOf: (n) => ctx.varOf(n) })
  if (!route) return refused(a, 404, '404 Route Not Found')
  a.route_id = route.id
  ctx.routeId = route.id
  ctx.routeName = route.name
  const global = gen.http.global
  const step = await runChainsTraced(global.length === 0 ? route.chains : [...global, route.chain], ctx, (name, phase, s) => {
    if (!s) a.plugins.push({ name, phase, result: 'pass' })
    else {
      const key = keyOf(s)
      a.plugins.push({ name, phase, result: 'refuse', status: s.status, ...(key !== undefined ? { key } : {}) })
    }
  })
  if (step) {
    const who = a.plugins[a.plugins.length - 1]?.name ?? 'a plugin'
    const msg = msgOf(step)
    return refused(a, step.status, msg.startsWith(`${who}:`) ? msg : `${who}: ${msg || `answers ${step.status}`}`)
  }
  if (!route.upstream) {
    const m = route.missing ?? { status: 503, msg: 'missing upstream configuration in Route or Service' }
    return refused(a, m.status, m.msg)
  }
  a.reason = `proxied to the upstream of route ${route.id}`
  return a
}

function refused(a: ExplainAnswer, status: number, reason: string): ExplainAnswer {
  a.status = status
  a.reason = reason
  return a
}
