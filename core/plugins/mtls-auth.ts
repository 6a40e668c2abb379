import { Type } from 'typebox'
import { definePlugin } from './types.js'

/** mtls-auth on a route or global rule (CONTRACT.md). */
export const MtlsAuthSchema = Type.Object(
  {
    validate_certificate: Type.Boolean({ default: true }),
    validate_issuer_acl: Type.Boolean({ default: false }),
    issuer_acl: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })),
    ca: Type.Optional(Type.String({ minLength: 64, maxLength: 65536 })),
    consumer_required: Type.Boolean({ default: true }),
  },
  { additionalProperties: false },
)

/** mtls-auth on a consumer: the certificates that identify it (several allow rotation). */
export const MtlsAuthConsumerSchema = Type.Object(
  { certificates: Type.Array(Type.String({ minLength: 64, maxLength: 65536 }), { minItems: 1, maxItems: 16 }) },
  { additionalProperties: false },
)

/** mtls-auth: a client certificate identifies a consumer (rewrite phase, after ssl-enforcement). */
export const mtlsAuth = definePlugin({
  name: 'mtls-auth',
  version: '0.1',
  priority: 2590,
  schema: MtlsAuthSchema,
  consumerSchema: MtlsAuthConsumerSchema,
  check(conf) {
    if (conf.validate_issuer_acl && !conf.issuer_acl) return 'issuer_acl is required when validate_issuer_acl is true'
    return undefined
  },
  compile: (conf) => conf,
})
