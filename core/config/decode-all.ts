import type { Decode } from './apply.js'
import { ok, fail } from '../schema/decode.js'

/** The decoders of every resource, shared with the admin (replaced by core/resources/registry when it lands). */
export function buildDecode(): Decode {
  return (_res, id, raw) => (raw !== null && typeof raw === 'object' && !Array.isArray(raw) ? ok({ ...(raw as object), id }) : fail('not an object'))
}
