import { fail, ok, type Result } from '../core/schema/decode.js'

/** The admin's body limit (APISIX reads up to 1.5 MiB). */
export const BODY_LIMIT = 1.5 * 1024 * 1024

/** Deepest nesting of arrays and objects a body may have (DESIGN.md §4, "deep JSON"). */
export const MAX_DEPTH = 100

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** The deepest nesting of `[`/`{` outside strings, scanning JSON text once. */
export function nestingDepth(text: string): number {
  let depth = 0
  let max = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++ // backslash: skip the escaped character
      else if (c === 0x22) inString = false
    } else if (c === 0x22) inString = true
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) max = depth
    } else if (c === 0x5d || c === 0x7d) depth--
  }
  return max
}

function noProto(key: string, value: unknown): unknown {
  // an own "__proto__" key would become a prototype in any later spread or Object.assign
  if (key === '__proto__') throw new SyntaxError('the key "__proto__" is not allowed')
  return value
}

/**
 * An admin request body → JSON value (undefined for an empty body). Refuses invalid UTF-8
 * (fastify would store U+FFFD), nesting over MAX_DEPTH and invalid JSON, with APISIX's
 * `invalid request body: …` wording.
 */
export function parseBody(raw: Buffer | string | undefined): Result<unknown> {
  if (raw === undefined || raw.length === 0) return ok(undefined)
  let text: string
  try {
    text = typeof raw === 'string' ? raw : utf8.decode(raw)
  } catch {
    return fail('invalid request body: not valid UTF-8')
  }
  if (text.trim() === '') return ok(undefined)
  if (nestingDepth(text) > MAX_DEPTH) return fail(`invalid request body: nested deeper than ${MAX_DEPTH} levels`)
  try {
    return ok(JSON.parse(text, noProto) as unknown)
  } catch (err) {
    return fail(`invalid request body: ${err instanceof Error ? err.message : String(err)}`)
  }
}
