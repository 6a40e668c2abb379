import { Type, type Static } from 'typebox'
import { definePlugin, type RequestContext, type UpstreamRequest } from './types.js'
import { checkRegexUri, compileRegexUri, compileTemplate, type RegexUri, type Template } from '../pipeline/template.js'

const HeaderName = '^[^:]+$'
const HeaderValue = Type.Union([Type.String(), Type.Number(), Type.Array(Type.Union([Type.String(), Type.Number()]), { minItems: 1 })])

/** APISIX's proxy-rewrite schema (spec §8). */
export const ProxyRewriteSchema = Type.Object(
  {
    uri: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, pattern: '^\\/.*' })),
    regex_uri: Type.Optional(Type.Array(Type.String(), { minItems: 2 })),
    host: Type.Optional(Type.String({ pattern: '^[0-9a-zA-Z-.]+(:\\d{1,5})?$' })),
    method: Type.Optional(
      Type.Union(
        ['GET', 'POST', 'PUT', 'HEAD', 'DELETE', 'OPTIONS', 'MKCOL', 'COPY', 'MOVE', 'PROPFIND', 'LOCK', 'UNLOCK', 'PATCH', 'TRACE'].map((m) =>
          Type.Literal(m),
        ),
      ),
    ),
    headers: Type.Optional(
      Type.Union([
        Type.Object(
          {
            add: Type.Optional(Type.Record(Type.String({ pattern: HeaderName }), HeaderValue)),
            set: Type.Optional(Type.Record(Type.String({ pattern: HeaderName }), HeaderValue)),
            remove: Type.Optional(Type.Array(Type.String({ pattern: HeaderName }), { minItems: 1 })),
          },
          { additionalProperties: false },
        ),
        Type.Record(Type.String({ pattern: HeaderName }), Type.Union([Type.String(), Type.Number()])),
      ]),
    ),
    use_real_request_uri_unsafe: Type.Boolean({ default: false }),
  },
  { additionalProperties: false, minProperties: 1 },
)

/** proxy-rewrite: rewrites the upstream URI, Host, method and headers (priority 1008, rewrite phase). */
export const proxyRewrite = definePlugin({
  name: 'proxy-rewrite',
  version: '0.1',
  priority: 1008,
  schema: ProxyRewriteSchema,
  check(conf) {
    const r = conf.regex_uri
    if (r && r.length % 2 !== 0) return 'The length of regex_uri should be an even number'
    const given = conf.uri ?? conf.regex_uri ?? conf.host ?? conf.method ?? conf.headers
    if (given === undefined && !conf.use_real_request_uri_unsafe) return 'expect object to have at least 1 properties'
    if (r) {
      const why = checkRegexUri(r)
      if (why) return why
    }
    const h = conf.headers
    if (h && !isNewForm(h)) {
      for (const [name, v] of Object.entries(h)) {
        if (!/^[!-9;-~]+$/.test(name)) return 'invalid field character in header'
        if (/[\x00-\x08\x0a-\x1f\x7f]/.test(String(v))) return 'invalid value character in header'
      }
    }
    return undefined
  },
  compile: compileProxyRewrite,
  rewrite: runProxyRewrite,
})

type Conf = Static<typeof ProxyRewriteSchema>
type HeaderValues = string | number | readonly (string | number)[]

/** The new header form has `add`, `set` or `remove` (apisix/plugins/proxy-rewrite.lua); anything else is the legacy flat form (= set). */
const isNewForm = (h: object): boolean => 'add' in h || 'set' in h || 'remove' in h

/** proxy-rewrite compiled: templates and regexes ready, header edits in the order they apply. */
interface Compiled {
  readonly uri: Template | undefined
  readonly regexUri: RegexUri | undefined
  readonly host: string | undefined
  readonly method: string | undefined
  readonly real: boolean
  readonly add: readonly [string, Template][]
  /** the header name lower-cased (once here, not per request) and its value templates */
  readonly set: readonly [string, readonly Template[]][]
  readonly remove: readonly string[]
}

const valuesOf = (v: HeaderValues): Template[] => (Array.isArray(v) ? v : [v]).map((x) => compileTemplate(String(x), { captures: true }))

/** A `?` produced by a variable in `uri` would start the query: escaped (spec §8). */
const escapeSeparator = (v: string): string => v.replace(/\?/g, '%3F')

function compileProxyRewrite(conf: Conf): Compiled {
  const h = conf.headers as Readonly<Record<string, unknown>> | undefined
  let add: [string, Template][] = []
  let set: [string, Template[]][] = []
  let remove: string[] = []
  if (h && isNewForm(h)) {
    for (const [name, v] of Object.entries((h['add'] ?? {}) as Record<string, HeaderValues>)) for (const t of valuesOf(v)) add.push([name, t])
    set = Object.entries((h['set'] ?? {}) as Record<string, HeaderValues>).map(([name, v]) => [name.toLowerCase(), valuesOf(v)])
    remove = ((h['remove'] ?? []) as string[]).map((n) => n.toLowerCase())
  } else if (h) {
    set = Object.entries(h as Record<string, string | number>).map(([name, v]) => [name.toLowerCase(), valuesOf(v)])
  }
  return {
    uri: conf.uri !== undefined ? compileTemplate(conf.uri, { escape: escapeSeparator }) : undefined,
    regexUri: conf.regex_uri ? compileRegexUri(conf.regex_uri) : undefined,
    host: conf.host,
    method: conf.method,
    real: conf.use_real_request_uri_unsafe,
    add,
    set,
    remove,
  }
}

const HEX = '0123456789ABCDEF'
/** nginx's ngx_escape_uri(NGX_ESCAPE_URI) table: controls, space, `#`, `%`, `?`, DEL and every byte ≥ 0x80. */
const escapedInPath = (b: number): boolean => b <= 0x20 || b === 0x23 || b === 0x25 || b === 0x3f || b >= 0x7f
const escapedInQuery = (b: number): boolean => b < 0x20 || b === 0x7f

function escapeBytes(s: string, escaped: (b: number) => boolean): string {
  let plain = true
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c > 0x7e || escaped(c)) {
      plain = false
      break
    }
  }
  if (plain) return s
  let out = ''
  for (const b of Buffer.from(s, 'utf8')) out += escaped(b) ? `%${HEX[b >> 4]}${HEX[b & 15]}` : String.fromCharCode(b)
  return out
}

/**
 * The upstream URI of proxy-rewrite: re-escaped as nginx does. Only a `uri` template may hold a
 * query (`split`): then the part after its first `?` has only control characters escaped.
 */
export function escapeUpstreamUri(uri: string, split: boolean): string {
  const q = split ? uri.indexOf('?') : -1
  if (q < 0) return escapeBytes(uri, escapedInPath)
  return escapeBytes(uri.slice(0, q), escapedInPath) + '?' + escapeBytes(uri.slice(q + 1), escapedInQuery)
}

function removeAdded(u: UpstreamRequest, lower: string): void {
  for (let i = u.addHeaders.length - 1; i >= 0; i--) if (u.addHeaders[i]![0].toLowerCase() === lower) u.addHeaders.splice(i, 1)
}

function runProxyRewrite(c: Compiled, ctx: RequestContext): undefined {
  const u = ctx.upstream
  const varOf = (n: string): string | undefined => ctx.varOf(n)
  let captures: readonly (string | undefined)[] | undefined
  let uri: string
  if (c.real) {
    const raw = ctx.varOf('real_request_uri') ?? ctx.uri
    if (c.uri) {
      const q = ctx.query
      const t = c.uri(varOf)
      uri = q ? `${t}${t.includes('?') ? '&' : '?'}${q}` : t
    } else uri = raw
  } else {
    uri = ctx.uri
    if (c.uri) uri = c.uri(varOf)
    else if (c.regexUri) {
      const r = c.regexUri(ctx.uri)
      if (r) {
        uri = r.uri
        captures = r.captures
      }
    }
    uri = escapeUpstreamUri(uri, c.uri !== undefined)
    if (ctx.query) uri += `${uri.includes('?') ? '&' : '?'}${ctx.query}`
  }
  u.uri = uri
  if (c.host !== undefined) u.host = c.host
  if (c.method !== undefined) u.method = c.method
  // APISIX's code order: add, then set (replacing added values too), then remove
  for (const [name, t] of c.add) {
    const v = t(varOf, captures)
    if (v !== '') u.addHeaders.push([name, v])
  }
  for (const [lower, ts] of c.set) {
    if (u.addHeaders.length > 0) removeAdded(u, lower)
    u.removeHeaders.delete(lower)
    // ngx.req.set_header with an empty value removes the header (an absent $ssl_client_* sets nothing)
    if (ts.length === 1) {
      // one value, the usual case: no array made
      const v = ts[0]!(varOf, captures)
      if (v === '') u.removeHeaders.add(lower)
      else u.setHeaders.set(lower, v)
      continue
    }
    const vals = ts.map((t) => t(varOf, captures)).filter((v) => v !== '')
    if (vals.length === 0) u.removeHeaders.add(lower)
    else u.setHeaders.set(lower, vals.length === 1 ? vals[0]! : vals)
  }
  for (const lower of c.remove) {
    removeAdded(u, lower)
    u.setHeaders.delete(lower)
    u.removeHeaders.add(lower)
  }
  return undefined
}
