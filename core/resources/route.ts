import { Type, type Static } from 'typebox'
import { Desc, Host, Id, Labels, Meta, Name, Plugins, Timeout, closed } from './defs.js'
import { UpstreamSchema, checkUpstream } from './upstream.js'
import { checkVars } from './vars.js'
import { checkCidr } from '../net/cidr.js'

/** HTTP methods a route may list (APISIX's enum). */
export const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'CONNECT', 'TRACE', 'PURGE'] as const

const Uri = Type.String({ minLength: 1, maxLength: 4096 })
const RemoteAddr = Type.String({ minLength: 1, maxLength: 64 })

/** The route object, as APISIX 3.x's `_M.route` (spec §2.1); cross-field rules are in checkRoute. */
export const RouteSchema = Type.Object(
  {
    ...Meta,
    name: Type.Optional(Name),
    desc: Type.Optional(Desc),
    labels: Type.Optional(Labels),
    uri: Type.Optional(Uri),
    uris: Type.Optional(Type.Array(Uri, { minItems: 1, uniqueItems: true })),
    host: Type.Optional(Host),
    hosts: Type.Optional(Type.Array(Host, { minItems: 1, uniqueItems: true })),
    methods: Type.Optional(Type.Array(Type.Enum([...METHODS]), { uniqueItems: true })),
    priority: Type.Integer({ default: 0 }),
    vars: Type.Optional(Type.Array(Type.Unknown())),
    remote_addr: Type.Optional(RemoteAddr),
    remote_addrs: Type.Optional(Type.Array(RemoteAddr, { minItems: 1, uniqueItems: true })),
    filter_func: Type.Optional(Type.String({ minLength: 10, pattern: '^function' })),
    script: Type.Optional(Type.String({ minLength: 10, maxLength: 102400 })),
    script_id: Type.Optional(Id),
    plugins: Type.Optional(Plugins),
    plugin_config_id: Type.Optional(Id),
    upstream: Type.Optional(UpstreamSchema),
    upstream_id: Type.Optional(Id),
    service_id: Type.Optional(Id),
    timeout: Type.Optional(Timeout),
    enable_websocket: Type.Optional(Type.Boolean()),
    status: Type.Enum([1, 0], { default: 1 }),
  },
  closed,
)

/** A validated route (schema defaults filled). */
export type Route = Static<typeof RouteSchema>

/**
 * APISIX's cross-field rules of a route (the allOf/anyOf/not of `_M.route` and the admin's
 * pre-checks), with messages that name the fields. Plugin confs are checked by the registry.
 */
export function checkRoute(r: Route): string | undefined {
  if (r.uri === undefined && r.uris === undefined) return 'one of uri or uris is required'
  if (r.uri !== undefined && r.uris !== undefined) return 'only one of uri or uris is allowed'
  if (r.host !== undefined && r.hosts !== undefined) return 'only one of host or hosts is allowed'
  if (r.remote_addr !== undefined && r.remote_addrs !== undefined) return 'only one of remote_addr or remote_addrs is allowed'
  const addrs = r.remote_addrs ?? (r.remote_addr === undefined ? [] : [r.remote_addr])
  for (const [i, a] of addrs.entries()) {
    const why = checkCidr(a)
    if (why) return `property "${r.remote_addrs ? `remote_addrs[${i}]` : 'remote_addr'}" validation failed: ${why}`
  }
  if (r.plugins === undefined && r.upstream === undefined && r.upstream_id === undefined && r.service_id === undefined && r.script === undefined) {
    return 'one of plugins, upstream, upstream_id, service_id or script is required'
  }
  if (r.script !== undefined && (r.plugins !== undefined || r.plugin_config_id !== undefined)) {
    return 'script cannot be combined with plugins or plugin_config_id'
  }
  // Lua code cannot run here: refusing is safer than matching or serving without it
  if (r.filter_func !== undefined) return 'filter_func (Lua) is not supported by this gateway'
  if (r.script !== undefined || r.script_id !== undefined) return 'script (Lua) is not supported by this gateway'
  if (r.vars !== undefined) {
    // linear on the data plane too (see checkSsl)
    const why = checkVars(r.vars, true)
    if (why) return why
  }
  if (r.upstream) return checkUpstream(r.upstream, 'upstream.')
  return undefined
}
