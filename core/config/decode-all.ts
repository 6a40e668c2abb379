import type { Decode } from './apply.js'
import { buildRegistry } from '../resources/registry.js'
import { pluginByName } from '../plugins/registry.js'

/** The decoders of every resource: the same registry the admin validates with (DESIGN.md §2.3). */
export function buildDecode(): Decode {
  const registry = buildRegistry(pluginByName)
  return (res, id, raw) => {
    const r = registry[res].decode(raw)
    if (!r.ok) return r
    // APISIX's data plane sets the id from the key (consumers: their username)
    return { ok: true, value: Object.freeze({ ...(r.value as object), id }) }
  }
}
