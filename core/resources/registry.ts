import type { TSchema } from 'typebox'
import type { ResourceName } from '../etcd/keys.js'
import { decoder, type Result } from '../schema/decode.js'
import { SslSchema, checkSsl, type Ssl } from './ssl.js'
import { RouteSchema, checkRoute, type Route } from './route.js'
import { UpstreamSchema, checkUpstream, type Upstream } from './upstream.js'
import { ConsumerSchema, type Consumer } from './consumer.js'
import { GlobalRuleSchema, type GlobalRule } from './global-rule.js'
import { checkPlugins, type PluginLookup } from './plugins.js'

/** The validated type of each resource. */
export interface ResourceTypes {
  ssls: Ssl
  routes: Route
  upstreams: Upstream
  consumers: Consumer
  global_rules: GlobalRule
}

/** One resource: its schema and the decoder both the admin and the data plane use. */
export interface ResourceDef<T> {
  readonly name: ResourceName
  /** singular, as APISIX's messages say it (`missing route id`) */
  readonly kind: string
  readonly schema: TSchema
  /** unknown → validated, defaulted, cross-field-checked, deep-frozen object; the input is not touched */
  decode(raw: unknown): Result<Readonly<T>>
}

/** APISIX's prefix for schema errors. */
const P = 'invalid configuration: '

/** Resource name → its definition. */
export type Registry = { readonly [K in ResourceName]: ResourceDef<ResourceTypes[K]> }

/**
 * Builds the resource registry (DESIGN.md §2.3). Plugin confs on routes, global rules and
 * consumers are checked against the plugin's own schema, found through `plugins`.
 * The data plane decodes with it too; checks that parse PEM or need etcd are the admin's.
 */
export function buildRegistry(plugins: PluginLookup): Registry {
  return {
    ssls: { name: 'ssls', kind: 'ssl', schema: SslSchema, decode: decoder(SslSchema, checkSsl, P) },
    routes: {
      name: 'routes',
      kind: 'route',
      schema: RouteSchema,
      decode: decoder(RouteSchema, (r) => checkRoute(r) ?? (r.plugins ? checkPlugins(r.plugins, plugins, 'route') : undefined), P),
    },
    upstreams: { name: 'upstreams', kind: 'upstream', schema: UpstreamSchema, decode: decoder(UpstreamSchema, (u) => checkUpstream(u), P) },
    consumers: {
      name: 'consumers',
      kind: 'consumer',
      schema: ConsumerSchema,
      decode: decoder(ConsumerSchema, (c) => (c.plugins ? checkPlugins(c.plugins, plugins, 'consumer') : undefined), P),
    },
    global_rules: {
      name: 'global_rules',
      kind: 'global_rule',
      schema: GlobalRuleSchema,
      decode: decoder(GlobalRuleSchema, (g) => checkPlugins(g.plugins, plugins, 'route'), P),
    },
  }
}
