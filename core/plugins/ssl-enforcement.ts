/**
 * Gravitee's ssl-enforcement policy (CONTRACT.md "Client-certificate plugins"): require TLS, a
 * client certificate, and a subject from an allow-list of X.500 patterns. A Gravitee user's
 * policy configuration pastes in unchanged: its header fields are accepted, while the
 * gateway-wide `apisix.ssl.client_cert_header` decides whose header certificate counts.
 */
import { Type, type Static } from 'typebox'
import { checkDnPattern, compileDnPatterns, type DnMatcher } from './dn-pattern.js'
import { definePlugin, type Reply, type RequestContext, type Step } from './types.js'

const Template = Type.Object(
  {
    status: Type.Integer({ minimum: 100, maximum: 599 }),
    body: Type.Optional(Type.String()),
    content_type: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false },
)

/** Gravitee's ssl-enforcement policy fields (CONTRACT.md "Client-certificate plugins"). */
export const SslEnforcementSchema = Type.Object(
  {
    requiresSsl: Type.Boolean({ default: true }),
    requiresClientAuthentication: Type.Boolean({ default: false }),
    whitelistClientCertificates: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
    certificateLocation: Type.Optional(Type.Union([Type.Literal('SESSION'), Type.Literal('HEADER')])),
    certificateHeaderName: Type.Optional(Type.String({ minLength: 1 })),
    useXForwardedProto: Type.Optional(Type.Boolean()),
    response_templates: Type.Optional(
      Type.Object(
        {
          SSL_ENFORCEMENT_SSL_REQUIRED: Type.Optional(Template),
          SSL_ENFORCEMENT_AUTHENTICATION_REQUIRED: Type.Optional(Template),
          SSL_ENFORCEMENT_CLIENT_FORBIDDEN: Type.Optional(Template),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
)

/** The refusal keys, with Gravitee's statuses and messages (SslEnforcementPolicy). */
export const SSL_ENFORCEMENT_KEYS = {
  SSL_ENFORCEMENT_SSL_REQUIRED: { status: 403, msg: 'Access to the resource requires SSL certificate.' },
  SSL_ENFORCEMENT_AUTHENTICATION_REQUIRED: { status: 401, msg: 'Unauthorized' },
  SSL_ENFORCEMENT_CLIENT_FORBIDDEN: { status: 403, msg: "You're not allowed to access this resource" },
} as const
type Key = keyof typeof SSL_ENFORCEMENT_KEYS
type Conf = Static<typeof SslEnforcementSchema>
type TemplateConf = Static<typeof Template>

/** ssl-enforcement compiled once per generation: the allow-list matcher and the three replies. */
export interface SslEnforcementCompiled {
  readonly requiresSsl: boolean
  readonly requiresClientAuthentication: boolean
  /** undefined: any authenticated certificate (no list, or an empty one, as in Gravitee) */
  readonly allowed: DnMatcher | undefined
  readonly refuse: (key: Key, name?: string) => Reply
  /** allow-list verdicts per certificate object (a connection's, or a cached header one) */
  readonly seen: WeakMap<object, boolean>
}

/** Escapes `s` for the inside of a JSON string, so a DN cannot break a JSON template. */
const jsonInner = (s: string): string => JSON.stringify(s).slice(1, -1)

/** The reply for `key`: the template when one is set (`{{name}}` replaced), else Gravitee's JSON. */
function replyFor(key: Key, tpl: TemplateConf | undefined, name: string | undefined): Reply {
  const d = SSL_ENFORCEMENT_KEYS[key]
  if (!tpl) return { status: d.status, body: { error_msg: d.msg, key, ...(name !== undefined ? { name } : {}) } }
  if (tpl.body === undefined) return { status: tpl.status, body: { error_msg: d.msg, key, ...(name !== undefined ? { name } : {}) } }
  const type = tpl.content_type ?? 'application/json'
  const json = /json/i.test(type)
  const body = tpl.body.replaceAll('{{name}}', name === undefined ? '' : json ? jsonInner(name) : name)
  return { status: tpl.status, body, headers: { 'content-type': type } }
}

/** Compiles a validated conf: patterns once, replies as functions of the DN. */
export function compileSslEnforcement(conf: Conf): SslEnforcementCompiled {
  const list = conf.whitelistClientCertificates
  const templates = conf.response_templates
  return {
    requiresSsl: conf.requiresSsl,
    requiresClientAuthentication: conf.requiresClientAuthentication,
    allowed: list && list.length > 0 ? compileDnPatterns(list) : undefined,
    refuse: (key, name) => replyFor(key, templates?.[key], name),
    seen: new WeakMap(),
  }
}

/** The rewrite phase: TLS (or a trusted proxy's X-Forwarded-Proto: https), then the certificate, then its subject. */
export function runSslEnforcement(c: SslEnforcementCompiled, ctx: Pick<RequestContext, 'secure' | 'clientCert'>): Step {
  if (c.requiresSsl && !ctx.secure) return c.refuse('SSL_ENFORCEMENT_SSL_REQUIRED')
  // As in Gravitee, the allow-list applies only together with requiresClientAuthentication.
  if (!c.requiresClientAuthentication) return undefined
  const cert = ctx.clientCert
  // handshake-verified, or passed by a trusted proxy; a certificate that failed the handshake's
  // verification (an ssl object with skip_mtls_uri_regex) does not authenticate anybody
  if (!cert?.verified) return c.refuse('SSL_ENFORCEMENT_AUTHENTICATION_REQUIRED')
  if (!c.allowed) return undefined
  // parsing the DN costs about 20 µs: keep-alive requests and cached header certificates reuse the verdict
  let ok = c.seen.get(cert)
  if (ok === undefined) c.seen.set(cert, (ok = c.allowed.matches(cert.subjectDn)))
  return ok ? undefined : c.refuse('SSL_ENFORCEMENT_CLIENT_FORBIDDEN', cert.subjectDn)
}

/** The admin's semantic check: every allow-list entry is an X.500 name. */
export function checkSslEnforcement(conf: Conf): string | undefined {
  for (const [i, p] of (conf.whitelistClientCertificates ?? []).entries()) {
    const why = checkDnPattern(p)
    if (why) return `whitelistClientCertificates[${i}]: ${why}`
  }
  return undefined
}

/** The admin's warnings: valid confs that do not do what they seem to. */
export function warnSslEnforcement(conf: Conf): string | undefined {
  const out: string[] = []
  if (conf.whitelistClientCertificates?.length && !conf.requiresClientAuthentication)
    out.push('whitelistClientCertificates has no effect without requiresClientAuthentication: true')
  if (conf.certificateLocation === 'HEADER' || conf.certificateHeaderName !== undefined || conf.useXForwardedProto !== undefined)
    out.push('certificateLocation, certificateHeaderName and useXForwardedProto are accepted for Gravitee compatibility; apisix.ssl.client_cert_header (name, trusted_proxies) decides which header and which proxies are trusted')
  return out.length > 0 ? out.join('; ') : undefined
}

/** ssl-enforcement: require TLS, a client certificate, and an allowed subject (rewrite phase, before proxy-rewrite). */
export const sslEnforcement = definePlugin({
  name: 'ssl-enforcement',
  version: '0.1',
  priority: 2600,
  schema: SslEnforcementSchema,
  check: checkSslEnforcement,
  warn: warnSslEnforcement,
  compile: compileSslEnforcement,
  rewrite: runSslEnforcement,
})
