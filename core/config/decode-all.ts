import type { Static, TSchema } from 'typebox'
import type { Decode } from './apply.js'
import { buildRegistry } from '../resources/registry.js'
import { pluginByName } from '../plugins/registry.js'
import { SslSchema, checkSsl } from '../resources/ssl.js'
import { ajv } from '../schema/ajv.js'
import { describe } from '../schema/describe.js'
import { deepFreeze, fail, ok, type Result } from '../schema/decode.js'

/** APISIX's prefix for schema errors (as the registry's decoders say it). */
const P = 'invalid configuration: '

/**
 * A decoder for values nobody else holds: validated (defaults filled) in place rather than on a
 * structured clone. Same schema (Ajv returns the registry's compiled function) and same check,
 * so it accepts and refuses exactly what the registry's decoder does.
 */
function inPlaceDecoder<S extends TSchema>(schema: S, check: (v: Static<S>) => string | undefined): (raw: unknown) => Result<Static<S>> {
  const validate = ajv.compile<Static<S>>(schema as object)
  return (raw) => {
    if (!validate(raw)) return fail(P + describe(validate.errors ?? []))
    const problem = check(raw)
    return problem ? fail(problem) : ok(raw)
  }
}

/**
 * The decoders of every resource: the same registry the admin validates with (DESIGN.md §2.3).
 * The caller passes a value it has just parsed and keeps nowhere else (apply.ts: JSON.parse of
 * the etcd value): ssl objects, the bulk of a large configuration, are checked and frozen in place
 * instead of being copied first (t/unit/config/decode-all.test.ts proves the same outcomes).
 */
export function buildDecode(): Decode {
  const registry = buildRegistry(pluginByName)
  const ssl = inPlaceDecoder(SslSchema, checkSsl)
  return (res, id, raw) => {
    if (res === 'ssls' && raw !== null && typeof raw === 'object' && !Array.isArray(raw)) {
      const r = ssl(raw)
      if (!r.ok) return r
      // APISIX's data plane sets the id from the key
      ;(r.value as { id?: unknown }).id = id
      return { ok: true, value: deepFreeze(r.value) }
    }
    const r = registry[res].decode(raw)
    if (!r.ok) return r
    // APISIX's data plane sets the id from the key (consumers: their username)
    return { ok: true, value: Object.freeze({ ...(r.value as object), id }) }
  }
}
