import { Type } from 'typebox'

/**
 * Schema fragments shared by every resource, as APISIX 3.x declares them in
 * apisix/schema_def.lua (id_schema, host_def, labels_def, desc_def, timeout_def …).
 */

/** Objects refuse unknown keys (DESIGN.md §2.2). */
export const closed = { additionalProperties: false } as const

/** APISIX's id pattern for string ids. */
export const ID_PATTERN = '^[a-zA-Z0-9-_.]+$'

/** `id`: a string of 1..64 `[a-zA-Z0-9-_.]`, or an integer ≥ 1. */
export const Id = Type.Union([Type.String({ minLength: 1, maxLength: 64, pattern: ID_PATTERN }), Type.Integer({ minimum: 1 })])

/** True when `s` is a valid id taken from a URL. */
export const isIdString = (s: string): boolean => s.length >= 1 && s.length <= 64 && /^[a-zA-Z0-9\-_.]+$/.test(s)

/** APISIX's host_def pattern; also the pattern of an ssl object's `sni`/`snis`. */
export const HOST_PATTERN = '^\\*$|^\\*?[0-9a-zA-Z-._\\[\\]:]+$'

/** A host or SNI name (`*`, `*.a.com`, `a.com`, `[::1]`); at most 255 characters (a DNS name is 253, plus a trailing dot and room for a port). */
export const Host = Type.String({ pattern: HOST_PATTERN, maxLength: 255 })

/** `name`: 1..256 characters. */
export const Name = Type.String({ minLength: 1, maxLength: 256 })

/** `desc`: up to 256 characters. */
export const Desc = Type.String({ maxLength: 256 })

/** `labels`: string keys, values without whitespace, 1..256 characters. */
export const Labels = Type.Record(Type.String(), Type.String({ pattern: '^\\S+$', minLength: 1, maxLength: 256 }))

/** `create_time` / `update_time`: epoch seconds, set by the admin. */
export const Timestamp = Type.Integer()

/** A PEM certificate (or chain) as APISIX bounds it. */
export const CertPem = Type.String({ minLength: 128, maxLength: 65536 })

/** A PEM private key, or its encrypted base64 form (spec §1.5). */
export const KeyPem = Type.String({ minLength: 64, maxLength: 65536 })

/** `timeout`: connect, send and read, all required, seconds > 0. */
export const Timeout = Type.Object(
  {
    connect: Type.Number({ exclusiveMinimum: 0 }),
    send: Type.Number({ exclusiveMinimum: 0 }),
    read: Type.Number({ exclusiveMinimum: 0 }),
  },
  closed,
)

/** `plugins`: plugin name → that plugin's conf (an object, checked against the plugin's schema). */
export const Plugins = Type.Record(Type.String(), Type.Record(Type.String(), Type.Unknown()))

/** The fields every stored object carries: id and the admin's timestamps. */
export const Meta = {
  id: Type.Optional(Id),
  create_time: Type.Optional(Timestamp),
  update_time: Type.Optional(Timestamp),
}
