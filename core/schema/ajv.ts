import { Ajv } from 'ajv'

/**
 * The one Ajv instance, shared by the admin API and the data plane's watcher (DESIGN.md §2.3):
 * no stripping of unknown keys, no coercion, defaults filled in.
 */
export const ajv = new Ajv({
  strict: true,
  strictRequired: false,
  strictTypes: false,
  allErrors: false,
  useDefaults: true,
  removeAdditional: false,
  coerceTypes: false,
})
