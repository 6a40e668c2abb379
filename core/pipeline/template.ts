/**
 * Templates with nginx variables, compiled once per generation (spec §8):
 *
 * - `compileTemplate`: APISIX's `core.utils.resolve_var` (`$name`, `${name}`, `${name ?? default}`,
 *   `\$` kept literally) preceded, for header values, by `resolve_var_with_captures` (`$1`, `${1}`
 *   from proxy-rewrite's regex_uri).
 * - `compileRegexUri`: proxy-rewrite's `regex_uri` pairs, applied like `ngx.re.sub` (first match
 *   only, replacement with `$0`, `$1`, `${1}`, `$$`).
 */

/** Reads one variable for the current request; undefined when it does not exist. */
export type TemplateVars = (name: string) => unknown

/** A compiled template: the text for one request. `captures[n]` is regex_uri's group n. */
export interface Template {
  (varOf: TemplateVars, captures?: readonly (string | undefined)[]): string
  /** The text when the template holds no reference (then the arguments are ignored). */
  readonly constant: string | undefined
}

type Part = string | { readonly name: string; readonly fallback: string | undefined } | { readonly capture: number }

/** Options of compileTemplate. */
export interface TemplateOptions {
  /** Resolve `$1`/`${1}` as regex_uri captures before variables (header values). */
  readonly captures?: boolean
  /** Applied to each variable's value (proxy-rewrite's `uri` escapes `?` to `%3F`). */
  readonly escape?: (value: string) => string
}

/** PCRE's `\w` without UCP, plus '.': the characters of a bare `$name`. */
const isNameChar = (c: number): boolean =>
  (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f || c === 0x2e
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39

/** Lua's tostring for the values variables hold. */
const text = (v: unknown): string => (typeof v === 'string' ? v : Array.isArray(v) ? v.join(',') : String(v))

/** `${ … }` body → name and `??` default, as resolve_var splits it (`\s*\?\?\s*`). */
function braced(inner: string): Part {
  const segs = inner.split(/\s*\?\?\s*/)
  while (segs.length > 1 && segs[segs.length - 1] === '') segs.pop()
  return { name: segs[0] ?? '', fallback: segs.length > 1 ? segs[1] : undefined }
}

/** Parses a template into literal text and references. */
function parse(tpl: string, captures: boolean): Part[] {
  const parts: Part[] = []
  let lit = ''
  let i = 0
  while (i < tpl.length) {
    const c = tpl.charCodeAt(i)
    // `(?<!\\)\$`: a dollar right after a backslash is literal, and the backslash stays
    if (c !== 0x24 || (i > 0 && tpl.charCodeAt(i - 1) === 0x5c)) {
      lit += tpl[i]
      i++
      continue
    }
    let ref: Part | undefined
    let end = i + 1
    if (captures) {
      // `\$\{?(\d+)\}?`: each brace optional on its own, as in resolve_var_with_captures
      let j = i + 1
      if (tpl.charCodeAt(j) === 0x7b) j++
      const digitsAt = j
      while (isDigit(tpl.charCodeAt(j))) j++
      if (j > digitsAt) {
        ref = { capture: Number(tpl.slice(digitsAt, j)) }
        end = tpl.charCodeAt(j) === 0x7d ? j + 1 : j
      }
    }
    if (!ref && tpl.charCodeAt(i + 1) === 0x7b) {
      // `\{\s*([^}]+?)\s*\}`
      const close = tpl.indexOf('}', i + 2)
      if (close > i + 2) {
        const raw = tpl.slice(i + 2, close)
        const trimmed = raw.trim()
        ref = braced(trimmed === '' ? raw.slice(-1) : trimmed)
        end = close + 1
      }
    } else if (!ref) {
      let j = i + 1
      while (j < tpl.length && isNameChar(tpl.charCodeAt(j))) j++
      if (j > i + 1) {
        ref = { name: tpl.slice(i + 1, j), fallback: undefined }
        end = j
      }
    }
    if (!ref) {
      lit += '$'
      i++
      continue
    }
    if (lit) parts.push(lit)
    lit = ''
    parts.push(ref)
    i = end
  }
  if (lit) parts.push(lit)
  return parts
}

/**
 * Compiles a template once. Unknown variables become '' (or the `??` default); a capture
 * that did not participate becomes ''. Values are inserted as they are: a capture or variable
 * value is never interpolated again (APISIX runs two passes, so a client-controlled capture
 * holding `$name` would be expanded; we do not).
 */
export function compileTemplate(tpl: string, opts: TemplateOptions = {}): Template {
  const parts = parse(tpl, opts.captures === true)
  const escape = opts.escape
  const only = parts.length === 0 ? '' : parts.length === 1 && typeof parts[0] === 'string' ? parts[0] : undefined
  const run = (varOf: TemplateVars, captures?: readonly (string | undefined)[]): string => {
    if (only !== undefined) return only
    let out = ''
    for (const p of parts) {
      if (typeof p === 'string') out += p
      else if ('capture' in p) out += captures?.[p.capture] ?? ''
      else {
        const v = varOf(p.name)
        const s = v === undefined || v === null ? p.fallback : text(v)
        if (s !== undefined) out += escape ? escape(s) : s
      }
    }
    return out
  }
  return Object.assign(run, { constant: only })
}

/** One regex_uri pair, compiled. */
interface RegexUriRule {
  readonly re: RegExp
  readonly replacement: readonly (string | number)[]
}

/** The result of applying regex_uri to a path: the new URI and the captures for header templates. */
export interface RegexUriResult {
  readonly uri: string
  readonly captures: readonly (string | undefined)[]
}

/** A compiled regex_uri list: the first matching pair rewrites, or undefined when none matches. */
export type RegexUri = (uri: string) => RegexUriResult | undefined

/** ngx.re.sub's replacement template: `$N`, `${N}`, `$$`; any other `$` is an error. */
function parseReplacement(r: string): (string | number)[] | string {
  const out: (string | number)[] = []
  let lit = ''
  for (let i = 0; i < r.length; i++) {
    const c = r[i]
    if (c !== '$') {
      lit += c
      continue
    }
    if (r[i + 1] === '$') {
      lit += '$'
      i++
      continue
    }
    const brace = r[i + 1] === '{'
    let j = brace ? i + 2 : i + 1
    const from = j
    while (isDigit(r.charCodeAt(j))) j++
    if (j === from) return `invalid capturing variable name found in "${r}"`
    if (brace && r[j] !== '}') return `the closing bracket in "${r}" variable is missing`
    if (lit) out.push(lit)
    lit = ''
    out.push(Number(r.slice(from, j)))
    i = brace ? j : j - 1
  }
  if (lit) out.push(lit)
  return out
}

function compileRules(pairs: readonly string[], mk: (p: string) => RegExp): RegexUriRule[] | string {
  if (pairs.length % 2 !== 0) return 'The length of regex_uri should be an even number'
  const rules: RegexUriRule[] = []
  for (let i = 0; i + 1 < pairs.length; i += 2) {
    const p = pairs[i]!
    const r = pairs[i + 1]!
    let re: RegExp
    try {
      re = mk(p)
    } catch (e) {
      return `invalid regex_uri(${p}, ${r}): ${(e as Error).message}`
    }
    const replacement = parseReplacement(r)
    if (typeof replacement === 'string') return `invalid regex_uri(${p}, ${r}): ${replacement}`
    rules.push({ re, replacement })
  }
  return rules
}

/**
 * Checks regex_uri for the admin: even length, each pattern compiled with the linear-time flag
 * (lookarounds and backreferences refused), each replacement valid. APISIX's message, or undefined.
 */
export function checkRegexUri(pairs: readonly string[]): string | undefined {
  const r = compileRules(pairs, (p) => new RegExp(p, 'l'))
  return typeof r === 'string' ? r : undefined
}

/** Compiles regex_uri for the data plane (no 'l' flag: V8 falls back to linear on backtracking). Throws what checkRegexUri reports. */
export function compileRegexUri(pairs: readonly string[]): RegexUri {
  const rules = compileRules(pairs, (p) => new RegExp(p))
  if (typeof rules === 'string') throw new Error(rules)
  return (uri) => {
    for (const { re, replacement } of rules) {
      const m = re.exec(uri)
      if (!m) continue
      // ngx.re.sub: only the first match is replaced; a group that did not take part is ''
      let repl = ''
      for (const part of replacement) repl += typeof part === 'string' ? part : (m[part] ?? '')
      const captures = Array.from(m, (g) => g)
      return { uri: uri.slice(0, m.index) + repl + uri.slice(m.index + m[0].length), captures }
    }
    return undefined
  }
}
