/**
 * Gravitee's `whitelistClientCertificates` matching (X500NameComparator), also used for
 * mtls-auth's `issuer_acl`. A pattern is an X.500 name whose values may hold `?` (one character)
 * and `*` or `**` (any run, crossing `/` and `.`); every other character is literal, and an
 * escaped `\*` or `\?` is a literal star or question mark. Both names are canonicalised
 * (attribute types by OID, so `E`/`EMAILADDRESS` and `S`/`ST` are one; values lower-cased,
 * trimmed, inner runs of spaces collapsed), must have as many RDNs, in the same order or
 * exactly reversed; a multi-valued RDN (`+`) matches one with the same attributes in any order.
 */
import picomatch from 'picomatch'
import { parseDn, type DnTextAttribute, type Rdn } from '../x509/name-parse.js'

/** A compiled allow-list of DN patterns. */
export interface DnMatcher {
  /** true when `dn` (RFC 2253/4514, as `$ssl_client_s_dn`) matches at least one pattern */
  matches(dn: string): boolean
}

/** Longest pattern the admin accepts. */
export const MAX_DN_PATTERN = 4096

// picomatch treats `/` as a path separator that `*` and `?` never cross; values are matched
// with `/` swapped for this private-use character, and a name holding it never matches.
const SLASH = '\uE000'
const PM = {
  dot: true,
  nobrace: true,
  noextglob: true,
  nonegate: true,
  noglobstar: true,
  noquantifiers: true,
  strictSlashes: true,
  fastpaths: false,
} as const

interface AttrPattern {
  readonly type: string
  readonly test: (text: string) => boolean
}
interface CanonAttr {
  readonly type: string
  readonly text: string
}

const byType = <A extends { readonly type: string }>(rdn: readonly A[]): readonly A[] =>
  rdn.length < 2 ? rdn : [...rdn].sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0))

/** Canonical text of a value and its glob (`?`/`*` where written unescaped, the rest escaped). */
function canonical(a: DnTextAttribute): { text: string; glob: string; wild: boolean; stars: number } {
  const v = a.value
  let text = ''
  let glob = ''
  let wild = false
  let stars = 0
  let space = false
  let lastStar = false
  for (let k = 0; k < v.length; ) {
    const ch = String.fromCodePoint(v.codePointAt(k) as number)
    const isWild = a.wild[k] === true
    k += ch.length
    if (!isWild && /^\s$/u.test(ch)) {
      space = text.length > 0
      continue
    }
    if (space) {
      text += ' '
      glob += '\\ '
      space = false
      lastStar = false
    }
    if (isWild) {
      wild = true
      text += ch
      if (ch === '*' && lastStar) continue
      glob += ch
      lastStar = ch === '*'
      if (lastStar) stars++
      continue
    }
    const lc = ch.toLowerCase()
    text += lc
    for (const c of lc) glob += c === '/' ? SLASH : /^[a-z0-9]$/.test(c) || c.charCodeAt(0) > 0x7f ? c : `\\${c}`
    lastStar = false
  }
  return { text, glob, wild, stars }
}

/** Canonical text of a certificate's value (no wildcards). */
const canonicalText = (a: DnTextAttribute): string => canonical({ type: a.type, value: a.value, wild: [] }).text

function compileValue(a: DnTextAttribute): (text: string) => boolean {
  const c = canonical(a)
  if (!c.wild) return (text) => text === c.text
  if (c.glob === '*') return () => true
  // A leading literal keeps picomatch from adding its dotfile and non-empty rules for a leading `*`.
  const plain = picomatch.makeRe(`x${c.glob}`, PM)
  let re = plain
  // One star backtracks at most O(value × pattern); more stars can go polynomial of high degree, so
  // they run on V8's linear engine when node has the regexp flags (about 1 µs instead of 50 ns).
  if (c.stars > 1) {
    try {
      re = new RegExp(plain.source, `${plain.flags}l`)
    } catch {
      re = plain
    }
  }
  return (text) => re.test(`x${text.replaceAll('/', SLASH)}`)
}

function compileName(rdns: readonly Rdn[]): readonly (readonly AttrPattern[])[] {
  return rdns.map((rdn) => byType(rdn.map((a) => ({ type: a.type, test: compileValue(a) }))))
}

function rdnMatches(p: readonly AttrPattern[], c: readonly CanonAttr[]): boolean {
  if (p.length !== c.length) return false
  for (let i = 0; i < p.length; i++) {
    const pa = p[i] as AttrPattern
    const ca = c[i] as CanonAttr
    if (pa.type !== ca.type || !pa.test(ca.text)) return false
  }
  return true
}

function nameMatches(p: readonly (readonly AttrPattern[])[], c: readonly (readonly CanonAttr[])[]): boolean {
  const n = p.length
  if (n !== c.length) return false
  let forward = true
  for (let i = 0; i < n && forward; i++) forward = rdnMatches(p[i] as readonly AttrPattern[], c[i] as readonly CanonAttr[])
  if (forward) return true
  for (let i = 0; i < n; i++) if (!rdnMatches(p[i] as readonly AttrPattern[], c[n - 1 - i] as readonly CanonAttr[])) return false
  return true
}

/** Why `p` is not a usable DN pattern, or undefined when it is (for the admin API). */
export function checkDnPattern(p: string): string | undefined {
  if (typeof p !== 'string') return 'a DN pattern must be a string'
  if (p.length > MAX_DN_PATTERN) return `DN pattern is longer than ${MAX_DN_PATTERN} characters`
  const r = parseDn(p, true)
  if (!r.ok) return `${JSON.stringify(p)} is not a valid X.500 name: ${r.error}`
  if (r.rdns.length === 0) return 'DN pattern is empty'
  return undefined
}

/** Compiles an allow-list once (per generation); patterns `checkDnPattern` refuses never match. */
export function compileDnPatterns(list: readonly string[]): DnMatcher {
  const names: (readonly (readonly AttrPattern[])[])[] = []
  for (const p of list) {
    if (checkDnPattern(p) !== undefined) continue
    const r = parseDn(p, true)
    if (r.ok) names.push(compileName(r.rdns))
  }
  return {
    matches(dn: string): boolean {
      if (names.length === 0) return false
      const r = parseDn(dn)
      if (!r.ok) return false
      const cert = r.rdns.map((rdn) => byType(rdn.map((a) => ({ type: a.type, text: canonicalText(a) }))))
      if (cert.some((rdn) => rdn.some((a) => a.text.includes(SLASH)))) return false
      return names.some((p) => nameMatches(p, cert))
    },
  }
}
