import { Type } from 'typebox'
import { definePlugin } from './types.js'

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
    return undefined
  },
  compile: (conf) => conf,
})
