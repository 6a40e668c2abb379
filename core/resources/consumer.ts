import { Type, type Static } from 'typebox'
import { Desc, Id, Labels, Meta, Plugins, closed } from './defs.js'

/** APISIX's consumer username pattern. */
export const USERNAME_PATTERN = '^[a-zA-Z0-9_\\-]+$'

/** The consumer object, as APISIX 3.x's `_M.consumer` (spec §2.3); keyed by `username`. */
export const ConsumerSchema = Type.Object(
  {
    ...Meta,
    username: Type.String({ minLength: 1, maxLength: 256, pattern: USERNAME_PATTERN }),
    desc: Type.Optional(Desc),
    labels: Type.Optional(Labels),
    plugins: Type.Optional(Plugins),
    group_id: Type.Optional(Id),
  },
  closed,
)

/** A validated consumer. */
export type Consumer = Static<typeof ConsumerSchema>

/** True when `s` can be a consumer's username (and so its etcd key). */
export const isUsername = (s: string): boolean => s.length >= 1 && s.length <= 256 && /^[a-zA-Z0-9_-]+$/.test(s)
