/**
 * Paths that a common upstream server reads differently from the gateway (CONTRACT.md, data
 * plane). The gateway matches `skip_mtls_uri_regex` on its normalised `$uri` (decoded once, dot
 * segments resolved, slashes merged), but proxies the target as the client sent it, as nginx's
 * proxy_pass does; where a server would turn that target into another path, the skip list's
 * verdict would not be about the resource served, so such a path never counts as whitelisted.
 * Each family says which server behaviour it covers. Already refused for everybody by
 * core/pipeline/path.ts, so not listed: a decoded NUL, bad or `%u` escapes, bytes that are not
 * UTF-8 (overlong `%c0%ae`), `..` above the root.
 */

interface Family {
  /** what the path holds, for the 400's error_msg */
  readonly name: string
  /** `raw`: the path as sent (no query); `path`: the gateway's normalised `$uri` */
  readonly test: (raw: string, path: string) => boolean
}

/** A segment left after normalisation that holds only dots and spaces, with a dot ("...", ".. "). */
function dotsAndSpaces(path: string): boolean {
  for (const seg of path.split('/')) if (seg.includes('.') && /^[. ]+$/.test(seg)) return true
  return false
}

const FAMILIES: readonly Family[] = [
  // Tomcat and Jetty strip ";parameters" from every segment before resolving dot segments
  // (`/public/..;/x` is `/x`), decoding %3B first; Spring and JAX-RS read matrix parameters off
  // any segment, so `/private;.css` is `/private` to them while an extension regex matches here
  { name: 'path parameters (";")', test: (raw) => raw.includes(';') || /%3b/i.test(raw) },
  // IIS and Windows servers take "\" as "/", raw or decoded from %5C (so do WHATWG URL parsers
  // for http URLs)
  { name: 'a backslash', test: (raw) => raw.includes('\\') || /%5c/i.test(raw) },
  // Windows "best fit" conversion to ANSI code pages (IIS, CGI on Windows) maps the fullwidth
  // solidus, reverse solidus and full stop to "/", "\" and "."
  { name: 'a fullwidth slash, backslash or dot', test: (_raw, path) => /[\uFF0F\uFF3C\uFF0E]/.test(path) },
  // an encoded slash: nginx and the gateway split segments on it; Apache (AllowEncodedSlashes
  // Off or NoDecode), Tomcat and Jetty refuse it or keep it inside its segment
  { name: 'an encoded slash (%2F)', test: (raw) => /%2f/i.test(raw) },
  // a %XX left after one decoding: IIS (CVE-2001-0333) and chains of proxies decode again, so
  // %252e%252e is ".." to them
  { name: 'double percent-encoding (%25)', test: (raw) => /%25/i.test(raw) },
  // dot segments, raw or encoded (%2E): resolved here as RFC 3986 says, but servers that route the
  // raw path (Node's http, Express, Spring's getRequestURI) do not resolve them
  { name: 'a dot segment', test: (raw) => /%2e/i.test(raw) || /(?:^|\/)\.{1,2}(?:\/|$)/.test(raw) },
  // Windows strips trailing dots and spaces from names: ".. " and "..." name the parent
  { name: 'a segment of dots and spaces', test: (_raw, path) => dotsAndSpaces(path) },
]

/**
 * What makes a path ambiguous (a phrase for the 400's message), or undefined when every common
 * server reads it as the gateway does. `raw` is the path as sent, without the query; `path` is
 * the normalised `$uri`.
 */
export function ambiguousPath(raw: string, path: string): string | undefined {
  for (const f of FAMILIES) if (f.test(raw, path)) return f.name
  return undefined
}
