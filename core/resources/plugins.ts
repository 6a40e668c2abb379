import type { ValidateFunction } from 'ajv'
import type { PluginDef } from '../plugins/types.js'
import { ajv } from '../schema/ajv.js'
import { describe } from '../schema/describe.js'

/** Finds a plugin's declaration by name (core/plugins/registry.ts pluginByName, passed in). */
export type PluginLookup = (name: string) => PluginDef | undefined

/** Where a plugin conf sits: a route or global rule uses `schema`, a consumer `consumerSchema`. */
export type PluginSide = 'route' | 'consumer'

/** APISIX injects `_meta` into every plugin's schema (apisix/plugin.lua plugin_injected_schema). */
const MetaSchema = {
  type: 'object',
  properties: {
    disable: { type: 'boolean' },
    priority: { type: 'integer' },
    error_response: { anyOf: [{ type: 'string' }, { type: 'object' }] },
    filter: { type: 'array' },
  },
  additionalProperties: false,
} as const

const compiled = new WeakMap<object, ValidateFunction>()
function validatorOf(schema: object): ValidateFunction {
  let v = compiled.get(schema)
  if (!v) {
    v = ajv.compile(schema)
    compiled.set(schema, v)
  }
  return v
}
const validateMeta = ajv.compile(MetaSchema)

/**
 * Checks every plugin conf of `plugins` against that plugin's schema, filling the schema's
 * defaults into the confs in place (the caller passes a copy). Messages are APISIX's
 * (apisix/plugin.lua check_schema): `unknown plugin [x]`,
 * `failed to check the configuration of plugin x err: ...`.
 */
export function checkPlugins(plugins: Record<string, Record<string, unknown>>, lookup: PluginLookup, side: PluginSide): string | undefined {
  for (const [name, conf] of Object.entries(plugins)) {
    const def = lookup(name)
    if (!def) return `unknown plugin [${name}]`
    const fail = (why: string): string => `failed to check the configuration of plugin ${name} err: ${why}`
    const { _meta: meta, ...rest } = conf
    if (meta !== undefined && !validateMeta(meta)) return fail(`_meta: ${describe(validateMeta.errors ?? [])}`)
    const schema = side === 'consumer' ? (def.consumerSchema ?? def.schema) : def.schema
    const validate = validatorOf(schema)
    if (!validate(rest)) return fail(describe(validate.errors ?? []))
    const why = side === 'consumer' && def.consumerSchema ? def.checkConsumer?.(rest) : def.check?.(rest)
    if (why) return fail(why)
    // keep the defaults filled into `rest`
    for (const k of Object.keys(conf)) if (k !== '_meta') delete conf[k]
    Object.assign(conf, rest)
  }
  return undefined
}

/** The admin's warnings for plugin confs that are valid but probably not what was meant. */
export function pluginWarnings(plugins: Readonly<Record<string, Readonly<Record<string, unknown>>>>, lookup: PluginLookup): string[] {
  const out: string[] = []
  for (const [name, conf] of Object.entries(plugins)) {
    const w = lookup(name)?.warn?.(conf)
    if (w) out.push(`plugin ${name}: ${w}`)
  }
  return out
}
