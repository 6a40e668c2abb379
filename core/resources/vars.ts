import { checkPattern } from './regex.js'

/**
 * Structure of APISIX's `vars` (lua-resty-expr): a list of rules `[var, op, value]` or
 * `[var, "!", op, value]`, optionally led by a logical operator (`AND`, `OR`, `!AND`, `!OR`)
 * whose other items are nested expressions.
 */

const OPS = new Set(['==', '~=', '>', '<', '>=', '<=', '~~', '~*', 'in', 'has', 'ipmatch'])
const LOGICAL = new Set(['AND', 'OR', '!AND', '!OR'])
const MAX_DEPTH = 16

/**
 * A message naming the first problem in a `vars` expression, or undefined. Regex operands
 * (`~~`, `~*`) must compile; with `linear`, on the linear-time engine.
 */
export function checkVars(vars: unknown, linear: boolean): string | undefined {
  const why = walk(vars, 'vars', linear, 0)
  return why ? `failed to validate the 'vars' expression: ${why}` : undefined
}

function walk(expr: unknown, at: string, linear: boolean, depth: number): string | undefined {
  if (depth > MAX_DEPTH) return `${at}: nested too deeply`
  if (!Array.isArray(expr)) return `${at}: must be an array`
  const first: unknown = expr[0]
  if (typeof first === 'string' && LOGICAL.has(first)) {
    for (let i = 1; i < expr.length; i++) {
      const why = walk(expr[i], `${at}[${i}]`, linear, depth + 1)
      if (why) return why
    }
    return undefined
  }
  // a single rule at this level, or a list of rules/expressions
  if (typeof first === 'string') return rule(expr, at, linear)
  for (const [i, item] of expr.entries()) {
    const why = walk(item, `${at}[${i}]`, linear, depth + 1)
    if (why) return why
  }
  return undefined
}

function rule(r: readonly unknown[], at: string, linear: boolean): string | undefined {
  const negated = r[1] === '!'
  const op = negated ? r[2] : r[1]
  const value = negated ? r[3] : r[2]
  if (r.length !== (negated ? 4 : 3)) return `${at}: a rule is [var, operator, value] or [var, "!", operator, value]`
  if (typeof r[0] !== 'string' || r[0] === '') return `${at}[0]: the variable name must be a non-empty string`
  if (typeof op !== 'string' || !OPS.has(op)) return `${at}: invalid operator ${JSON.stringify(op)}`
  if (op === '~~' || op === '~*') {
    if (typeof value !== 'string') return `${at}: the ${op} operator needs a string pattern`
    const why = checkPattern(value, linear, op === '~*' ? 'i' : '')
    if (why) return `${at}: ${why}`
  }
  if (op === 'in' && !Array.isArray(value)) return `${at}: the in operator needs an array`
  return undefined
}
