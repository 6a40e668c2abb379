import type { Static, TSchema } from 'typebox'
import { ajv } from './ajv.js'
import { describe } from './describe.js'

/** A value or an error message: expected failures are values, not exceptions (DESIGN.md §2.1). */
export type Result<T, E = string> = { ok: true; value: T } | { ok: false; error: E }

export const ok = <T>(value: T): Result<T, never> => ({ ok: true, value })
export const fail = <E = string>(error: E): Result<never, E> => ({ ok: false, error })

/** Freezes an object graph in place and returns it. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v)
  }
  return value
}

/**
 * Builds a decoder: unknown → validated (schema defaults filled), semantically checked by
 * `check`, deep-frozen T. The input is never modified. Schema errors are prefixed with
 * `schemaPrefix` (APISIX's `invalid configuration: `).
 */
export function decoder<S extends TSchema>(schema: S, check?: (v: Static<S>) => string | undefined, schemaPrefix = '') {
  const validate = ajv.compile<Static<S>>(schema as object)
  return (raw: unknown): Result<Readonly<Static<S>>> => {
    let copy: unknown
    try {
      copy = structuredClone(raw)
    } catch {
      return fail('value cannot be copied (nested too deeply or not plain data)')
    }
    if (!validate(copy)) return fail(schemaPrefix + describe(validate.errors ?? []))
    const problem = check?.(copy)
    return problem ? fail(problem) : ok(deepFreeze(copy))
  }
}
