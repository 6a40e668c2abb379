import { fail, ok, type Result } from '../core/schema/decode.js'

type Obj = Record<string, unknown>

/** True for a plain JSON object (not an array, not null). */
export const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)

/**
 * APISIX's PATCH merge (apisix/core/table.lua merge; RFC 7386 for objects): objects merge
 * recursively, arrays and scalars replace, `null` deletes. Neither input is modified.
 */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch
  const out: Obj = isObject(target) ? { ...target } : {}
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k]
    else out[k] = mergePatch(out[k], v)
  }
  return out
}

/**
 * Replaces the value at `path` (`['plugins', 'proxy-rewrite']`) with `value`, creating missing
 * intermediate objects (APISIX's sub-path PATCH). An intermediate that is not an object → error.
 */
export function setSubPath(target: Obj, path: readonly string[], value: unknown): Result<Obj> {
  if (path.length === 0) return fail('invalid sub-path: empty')
  const root: Obj = { ...target }
  let cur = root
  for (const [i, seg] of path.entries()) {
    if (seg === '' || seg === '__proto__') return fail(`invalid sub-path: ${path.join('/')}`)
    if (i === path.length - 1) {
      cur[seg] = value
      break
    }
    const next = cur[seg]
    if (next === undefined) cur[seg] = {}
    else if (!isObject(next)) return fail(`invalid sub-path: ${path.slice(0, i + 1).join('/')} is not an object`)
    else cur[seg] = { ...next }
    cur = cur[seg] as Obj
  }
  return ok(root)
}
