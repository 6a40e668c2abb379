/**
 * lua-resty-expr (v1), the language of a route's `vars`: compiled once, evaluated per request.
 *
 * Shape: `[[var, op, val], ...]` (AND of the rules), `["AND"|"OR"|"!AND"|"!OR", rule, rule, ...]`
 * nested freely, `[var, "!", op, val]` negates one comparison, `[var, val]` means `==`.
 */
import { buildCidrSet } from '../net/cidr.js'

/** What a variable reads as: nginx variables are strings; a few APISIX ones are lists. */
export type VarValue = string | number | boolean | readonly string[] | undefined
/** Reads one variable by name (`arg_x`, `http_x_foo`, `remote_addr` …) for the current request. */
export type VarReader = (name: string) => VarValue

/** A compiled expression: true when the request satisfies it. */
export type Expr = (varOf: VarReader) => boolean

type Cmp = (l: VarValue) => boolean

const LOGIC = new Set(['AND', 'OR', '!AND', '!OR'])
const OPS = new Set(['==', '~=', '>', '>=', '<', '<=', '~~', '~*', 'in', 'has', 'ipmatch'])

/** Lua's tonumber for the strings a variable holds: decimal, exponent, hex; '' and junk → undefined. */
export function luaToNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return v
  if (typeof v !== 'string') return undefined
  const s = v.trim()
  if (/^[-+]?0[xX][0-9a-fA-F]+$/.test(s)) return (s.startsWith('-') ? -1 : 1) * parseInt(s.replace(/^[-+]?0[xX]/, ''), 16)
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) return undefined
  return Number(s)
}

/** Lua's `==` between a variable and a JSON constant: no coercion between strings and numbers. */
const luaEq = (a: unknown, b: unknown): boolean => a === b

interface Compiled {
  readonly expr: Expr
}

type Fail = { readonly error: string }

/** How regexes are built: the data plane compiles plainly, the admin with the linear-time check. */
type RegexMaker = (pattern: string, flags: string) => RegExp

function compileComparison(rule: readonly unknown[], mk: RegexMaker): Compiled | Fail {
  let l: unknown
  let op: unknown
  let r: unknown
  let reverse = false
  if (rule.length === 4) {
    if (rule[1] !== '!') return { error: "bad 'not' expression" }
    reverse = true
    ;[l, , op, r] = rule
  } else {
    ;[l, op, r] = rule
  }
  // lua-resty-expr lower-cases the operator before anything else (string.lower accepts numbers)
  if (typeof op === 'string' || typeof op === 'number') op = String(op).toLowerCase()
  if (r === undefined && !(typeof op === 'string' && OPS.has(op))) {
    // the two-element form [var, value] means ==
    if (op === undefined) return { error: 'invalid expression' }
    r = op
    op = '=='
  }
  if (l === undefined || l === null || op === undefined || op === null) return { error: 'invalid expression' }
  if (typeof op !== 'string' || !OPS.has(op)) return { error: `invalid operator '${String(op)}'` }
  const name = String(l)
  // JSON null arrives as ngx.null, which compare_val turns into nil
  const rv = r === null ? undefined : r
  const cmp = comparator(op, rv, mk)
  if ('error' in cmp) return cmp
  const test = cmp.fn
  return { expr: reverse ? (varOf) => !test(varOf(name)) : (varOf) => test(varOf(name)) }
}

function comparator(op: string, r: unknown, mk: RegexMaker): { fn: Cmp } | Fail {
  switch (op) {
    case '==':
      if (typeof r === 'number') return { fn: (l) => luaToNumber(l) === r }
      return { fn: (l) => luaEq(l, r) }
    case '~=':
      if (typeof r === 'number')
        return {
          fn: (l) => {
            const n = luaToNumber(l)
            return n === undefined || n !== r
          },
        }
      return { fn: (l) => !luaEq(l, r) }
    case '>':
    case '>=':
    case '<':
    case '<=': {
      const rn = luaToNumber(r)
      if (rn === undefined) return { fn: () => false }
      const f: (a: number) => boolean =
        op === '>' ? (a) => a > rn : op === '>=' ? (a) => a >= rn : op === '<' ? (a) => a < rn : (a) => a <= rn
      return {
        fn: (l) => {
          const ln = luaToNumber(l)
          return ln !== undefined && f(ln)
        },
      }
    }
    case '~~':
    case '~*': {
      if (typeof r !== 'string') return { error: `regex for '${op}' must be a string` }
      let re: RegExp
      try {
        re = mk(r, op === '~*' ? 'i' : '')
      } catch (e) {
        return { error: `invalid regex ${JSON.stringify(r)}: ${(e as Error).message}` }
      }
      // ngx.re.find: an unanchored search; a missing variable never matches
      return { fn: (l) => (typeof l === 'string' ? re.test(l) : typeof l === 'number' ? re.test(String(l)) : false) }
    }
    case 'in':
      if (!Array.isArray(r)) return { fn: () => false }
      return { fn: (l) => (r as unknown[]).some((v) => luaEq(v, l)) }
    case 'has':
      return { fn: (l) => Array.isArray(l) && (l as unknown[]).some((v) => luaEq(v, r)) }
    case 'ipmatch': {
      const list = typeof r === 'string' ? [r] : Array.isArray(r) ? r : undefined
      if (!list || !list.every((x): x is string => typeof x === 'string')) return { error: 'ipmatch needs a list of IP addresses or CIDRs' }
      let set: ReturnType<typeof buildCidrSet>
      try {
        set = buildCidrSet(list)
      } catch (e) {
        return { error: `invalid ip address: ${(e as Error).message}` }
      }
      return { fn: (l) => typeof l === 'string' && set.has(l) }
    }
    default:
      return { error: `invalid operator '${op}'` }
  }
}

function compileRule(rules: readonly unknown[], mk: RegexMaker): Compiled | Fail {
  if (rules.length === 0) return { error: 'rule too short' }
  const first = rules[0]
  if (Array.isArray(first)) return combine('AND', rules, mk)
  const logic = typeof first === 'string' || typeof first === 'number' ? String(first).toUpperCase() : ''
  if (LOGIC.has(logic)) {
    if (rules.length <= 2) return { error: 'rule too short' }
    return combine(logic, rules.slice(1), mk)
  }
  return compileComparison(rules, mk)
}

function combine(logic: string, parts: readonly unknown[], mk: RegexMaker): Compiled | Fail {
  const exprs: Expr[] = []
  for (const p of parts) {
    if (!Array.isArray(p)) return { error: 'invalid expression' }
    const c = compileRule(p, mk)
    if ('error' in c) return c
    exprs.push(c.expr)
  }
  const all: Expr = (v) => {
    for (const e of exprs) if (!e(v)) return false
    return true
  }
  const any: Expr = (v) => {
    for (const e of exprs) if (e(v)) return true
    return false
  }
  switch (logic) {
    case 'OR':
      return { expr: any }
    case '!AND':
      return { expr: (v) => !all(v) }
    case '!OR':
      return { expr: (v) => !any(v) }
    default:
      return { expr: all }
  }
}

const always: Expr = () => true

function compileWith(vars: unknown, mk: RegexMaker): Compiled | Fail {
  if (!Array.isArray(vars)) return { error: 'vars must be an array' }
  if (vars.length === 0) return { expr: always }
  const first: unknown = vars[0]
  if (!Array.isArray(first)) {
    const op = typeof first === 'string' ? first.toUpperCase() : ''
    if (!LOGIC.has(op)) return { error: 'rule should be wrapped inside brackets' }
  }
  return compileRule(vars, mk)
}

/**
 * Compiles a route's `vars` for the data plane (regexes without the 'l' flag: the process runs
 * with V8's linear-engine fallback). Throws on an expression `checkVars` would refuse.
 */
export function compileVars(vars: unknown): Expr {
  const c = compileWith(vars, (p, f) => new RegExp(p, f))
  if ('error' in c) throw new Error(`failed to validate the 'vars' expression: ${c.error}`)
  return c.expr
}

/**
 * Checks a route's `vars` (admin and data plane share it): the lua-resty-expr grammar, operators,
 * CIDRs, and each regex compiled, with `linear` on the linear-time engine (refusing lookarounds
 * and backreferences; the admin's check).
 * Returns APISIX's message (`failed to validate the 'vars' expression: …`) or undefined.
 */
export function checkVars(vars: unknown, linear = true): string | undefined {
  // V8's linear engine refuses the `i` flag itself (`~*`), so linearity is judged on the bare pattern
  const linearMaker: RegexMaker = (p, f) => (new RegExp(p, 'l'), new RegExp(p, f))
  const c = compileWith(vars, linear ? linearMaker : (p, f) => new RegExp(p, f))
  return 'error' in c ? `failed to validate the 'vars' expression: ${c.error}` : undefined
}
