import { Type, type Static } from 'typebox'
import { isIP } from 'node:net'
import { CertPem, Desc, Host, Id, KeyPem, Labels, Meta, Name, Timeout, closed } from './defs.js'

/** Array-form node: APISIX does not close this object, so extra keys are kept. */
const Node = Type.Object({
  host: Host,
  port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
  weight: Type.Integer({ minimum: 0 }),
  // APISIX's default 0 is applied by the data plane: Ajv ignores defaults inside anyOf
  priority: Type.Optional(Type.Integer()),
  metadata: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
})

/** `nodes`: `{"host:port": weight}` or `[{host, port, weight, priority}]` (spec §2.2). */
export const Nodes = Type.Union([Type.Record(Type.String(), Type.Integer({ minimum: 0 })), Type.Array(Node)])

/** The load-balancing types APISIX ships. */
export const BALANCER_TYPES = ['roundrobin', 'chash', 'least_conn', 'ewma'] as const

/** The upstream object, as APISIX 3.x's `_M.upstream` (spec §2.2). */
export const UpstreamSchema = Type.Object(
  {
    ...Meta,
    name: Type.Optional(Name),
    desc: Type.Optional(Desc),
    labels: Type.Optional(Labels),
    nodes: Type.Optional(Nodes),
    service_name: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    discovery_type: Type.Optional(Type.String()),
    discovery_args: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    type: Type.String({ default: 'roundrobin' }),
    hash_on: Type.Enum(['vars', 'header', 'cookie', 'consumer', 'vars_combinations'], { default: 'vars' }),
    key: Type.Optional(Type.String()),
    retries: Type.Optional(Type.Integer({ minimum: 0 })),
    retry_timeout: Type.Optional(Type.Number({ minimum: 0 })),
    timeout: Type.Optional(Timeout),
    scheme: Type.Enum(['grpc', 'grpcs', 'http', 'https', 'tcp', 'tls', 'udp', 'kafka'], { default: 'http' }),
    pass_host: Type.Enum(['pass', 'node', 'rewrite'], { default: 'pass' }),
    upstream_host: Type.Optional(Host),
    tls: Type.Optional(
      Type.Object(
        {
          client_cert_id: Type.Optional(Id),
          client_cert: Type.Optional(CertPem),
          client_key: Type.Optional(KeyPem),
          verify: Type.Boolean({ default: false }),
        },
        closed,
      ),
    ),
    keepalive_pool: Type.Optional(
      Type.Object(
        {
          size: Type.Integer({ minimum: 1, default: 320 }),
          idle_timeout: Type.Number({ minimum: 0, default: 60 }),
          requests: Type.Integer({ minimum: 1, default: 1000 }),
        },
        closed,
      ),
    ),
    // health checks are accepted for compatibility; their fields are not interpreted
    checks: Type.Optional(
      Type.Object(
        {
          active: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
          passive: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
        },
        closed,
      ),
    ),
  },
  closed,
)

/** A validated upstream (schema defaults filled). */
export type Upstream = Static<typeof UpstreamSchema>

const HASH_VARS = /^((uri|server_name|server_addr|request_uri|remote_port|remote_addr|query_string|host|hostname|mqtt_client_id)|arg_[0-9a-zA-z_-]+)$/
const HASH_HEADER = /^[a-zA-Z0-9-_]+$/

/** Splits a hash-form node key (`host:port`, `[v6]:port`, `host`) into host and port. */
export function splitHostPort(hp: string): { host: string; port: number | undefined } | undefined {
  if (hp.startsWith('[')) {
    const end = hp.indexOf(']')
    if (end < 0) return undefined
    const rest = hp.slice(end + 1)
    if (rest !== '' && !/^:\d{1,5}$/.test(rest)) return undefined
    return { host: hp.slice(0, end + 1), port: rest === '' ? undefined : Number(rest.slice(1)) }
  }
  const colon = hp.lastIndexOf(':')
  if (colon < 0) return { host: hp, port: undefined }
  if (hp.indexOf(':') !== colon) return undefined // a bare IPv6 address
  const port = hp.slice(colon + 1)
  if (!/^\d{1,5}$/.test(port)) return undefined
  return { host: hp.slice(0, colon), port: Number(port) }
}

/**
 * APISIX's semantic checks of an upstream (apisix/upstream.lua check_upstream_conf), run by
 * the admin and the data plane: node forms, ports, pass_host, chash keys, tls field pairs.
 * `where` prefixes field names for an upstream inlined in a route.
 */
export function checkUpstream(u: Upstream, where = ''): string | undefined {
  const f = (name: string): string => `${where}${name}`
  if (u.nodes === undefined) {
    if (u.service_name !== undefined) return `${f('service_name')}: service discovery is not supported by this gateway; use nodes`
    return `property "${f('nodes')}" is required`
  }
  if (u.service_name !== undefined || u.discovery_type !== undefined) return `only one of ${f('nodes')} or ${f('service_name')} is allowed`
  if (!Array.isArray(u.nodes)) {
    for (const hp of Object.keys(u.nodes)) {
      const parsed = splitHostPort(hp)
      if (!parsed) return `invalid node ${JSON.stringify(hp)} in ${f('nodes')}: IPv6 address must be enclosed with '[' and ']'`
      if (parsed.port !== undefined && (parsed.port < 1 || parsed.port > 65535)) return `invalid port ${parsed.port}`
      if (parsed.host === '') return `invalid node ${JSON.stringify(hp)} in ${f('nodes')}`
    }
  } else {
    for (const [i, n] of u.nodes.entries()) {
      if (isIP(n.host) === 6) return `property "${f(`nodes[${i}].host`)}" validation failed: IPv6 address must be enclosed with '[' and ']'`
    }
  }
  if (!(BALANCER_TYPES as readonly string[]).includes(u.type)) {
    return `property "${f('type')}" validation failed: unsupported load balancing type ${JSON.stringify(u.type)}`
  }
  if (u.pass_host === 'rewrite' && !u.upstream_host) return '`upstream_host` can\'t be empty when `pass_host` is `rewrite`'
  if (u.type === 'chash') {
    if (u.hash_on !== 'consumer' && u.key === undefined) return 'missing key'
    const key = u.key ?? ''
    if (u.hash_on === 'vars' && !HASH_VARS.test(key)) return `property "${f('key')}" validation failed: ${JSON.stringify(key)} is not a variable chash can use`
    if ((u.hash_on === 'header' || u.hash_on === 'cookie') && !HASH_HEADER.test(key)) {
      return `property "${f('key')}" validation failed: ${JSON.stringify(key)} is not a valid ${u.hash_on} name`
    }
  }
  const tls = u.tls
  if (tls) {
    if ((tls.client_cert === undefined) !== (tls.client_key === undefined)) return `${f('tls')}: client_cert and client_key must be set together`
    if (tls.client_cert_id !== undefined && tls.client_cert !== undefined) return `${f('tls')}: client_cert_id excludes client_cert and client_key`
  }
  return undefined
}
