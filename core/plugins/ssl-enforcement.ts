import { Type } from 'typebox'
import { definePlugin } from './types.js'

const Template = Type.Object(
  {
    status: Type.Integer({ minimum: 100, maximum: 599 }),
    body: Type.Optional(Type.String()),
    content_type: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false },
)

/** Gravitee's ssl-enforcement policy fields (CONTRACT.md "Client-certificate plugins"). */
export const SslEnforcementSchema = Type.Object(
  {
    requiresSsl: Type.Boolean({ default: true }),
    requiresClientAuthentication: Type.Boolean({ default: false }),
    whitelistClientCertificates: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
    certificateLocation: Type.Optional(Type.Union([Type.Literal('SESSION'), Type.Literal('HEADER')])),
    certificateHeaderName: Type.Optional(Type.String({ minLength: 1 })),
    useXForwardedProto: Type.Optional(Type.Boolean()),
    response_templates: Type.Optional(
      Type.Object(
        {
          SSL_ENFORCEMENT_SSL_REQUIRED: Type.Optional(Template),
          SSL_ENFORCEMENT_AUTHENTICATION_REQUIRED: Type.Optional(Template),
          SSL_ENFORCEMENT_CLIENT_FORBIDDEN: Type.Optional(Template),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
)

/** ssl-enforcement: require TLS, a client certificate, and an allowed subject (rewrite phase, before proxy-rewrite). */
export const sslEnforcement = definePlugin({
  name: 'ssl-enforcement',
  version: '0.1',
  priority: 2600,
  schema: SslEnforcementSchema,
  warn(conf) {
    return conf.whitelistClientCertificates && !conf.requiresClientAuthentication
      ? 'ssl-enforcement: whitelistClientCertificates has no effect without requiresClientAuthentication: true'
      : undefined
  },
  compile: (conf) => conf,
})
