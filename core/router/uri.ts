/**
 * One route path as APISIX's router reads it (lua-resty-radixtree with `no_param_match`):
 * no `*` → exact; otherwise a prefix match on the part before the first `*`. A path whose
 * segments start with `:` or `*` must then also match as a whole, each `:name` standing for one
 * segment and each `*name` for any rest (radixtree's `compare_param`).
 */

/** A compiled route path. */
export interface UriPattern {
  /** The path as configured (radixtree's `path_org`). */
  readonly original: string
  /** Exact path, or the prefix before the first `*`. */
  readonly key: string
  readonly prefix: boolean
  /** A whole-path check for paths with `:name`/`*name` segments (after the prefix matched). */
  readonly full: RegExp | undefined
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')

/** Compiles one `uri`/`uris` entry. */
export function compileUri(path: string): UriPattern {
  const star = path.indexOf('*')
  if (star < 0) return { original: path, key: path, prefix: false, full: undefined }
  // radixtree splits on '/' (dropping trailing empty items, then re-adding one trailing slash)
  const segs = path.split('/')
  while (segs.length > 1 && segs[segs.length - 1] === '') segs.pop()
  const isNamed = (seg: string): boolean => seg.startsWith(':') || seg.startsWith('*')
  const named = segs.filter(isNamed).length
  // `/a/*` (one '*' segment, last, where the prefix ends) says no more than its prefix: skip the regex
  const onlyTail = named === 1 && segs[segs.length - 1]!.startsWith('*') && star === path.lastIndexOf('/') + 1
  if (named === 0 || onlyTail) return { original: path, key: path.slice(0, star), prefix: true, full: undefined }
  const parts = segs.map((seg) =>
    seg.startsWith(':')
      ? '([^/]+)'
      : seg.startsWith('*')
        ? '([\\s\\S]*)'
        : // radixtree pastes literal segments into PCRE unescaped; we match them literally
          escapeRe(seg),
  )
  let src = parts.join('\\/')
  if (path.endsWith('/')) src += '\\/'
  return { original: path, key: path.slice(0, star), prefix: true, full: new RegExp(`^${src}$`) }
}

/** True when a request path satisfies the pattern (its key already matched exactly or as a prefix). */
export const fullMatch = (p: UriPattern, path: string): boolean => p.full === undefined || p.full.test(path)

/** The reference meaning of a pattern, for tests and for checks outside the index. */
export function uriMatches(p: UriPattern, path: string): boolean {
  if (p.prefix ? !path.startsWith(p.key) : path !== p.key) return false
  return fullMatch(p, path)
}
