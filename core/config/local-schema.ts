import { Type, type Static } from 'typebox'
import { APISIX_SSL_CIPHERS, APISIX_SSL_PROTOCOLS } from '../tls/settings.js'

/**
 * conf/config.yaml's schema: APISIX's key names, every default held here once
 * (conf/config.yaml shows the same values). Unknown keys are refused.
 */
const closed = { additionalProperties: false } as const

const Port = Type.Integer({ minimum: 1, maximum: 65535 })
// no default inside a union branch (Ajv ignores it): httpListeners() fills ip 0.0.0.0
const Listen = Type.Object({ ip: Type.Optional(Type.String({ minLength: 1 })), port: Port }, closed)

export const SslListen = Type.Object(
  {
    ip: Type.String({ minLength: 1, default: '0.0.0.0' }),
    port: Port,
    // accepted by the schema only to be refused naming apisix.enable_http2 (local.ts), as APISIX 3.9+ does
    enable_http2: Type.Optional(Type.Boolean()),
  },
  closed,
)

export const ConfigSchema = Type.Object(
  {
    apisix: Type.Object(
      {
        node_listen: Type.Union([Port, Type.Array(Listen, { minItems: 1 })], { default: 9080 }),
        // HTTP/2 on every listener: h2 by ALPN on TLS, h2c (prior knowledge) on plain ports
        enable_http2: Type.Boolean({ default: true }),
        workers: Type.Union([Type.Literal('auto'), Type.Integer({ minimum: 1, maximum: 256 })], { default: 'auto' }),
        ssl: Type.Object(
          {
            enable: Type.Boolean({ default: true }),
            listen: Type.Array(SslListen, { minItems: 1, default: [{ port: 9443 }] }),
            fallback_sni: Type.String({ default: '' }),
            ssl_trusted_certificate: Type.String({ default: '' }),
            // for ssl objects without their own ssl_protocols (nginx's form: versions separated by spaces)
            ssl_protocols: Type.String({ default: APISIX_SSL_PROTOCOLS }),
            ssl_ciphers: Type.String({ minLength: 1, default: APISIX_SSL_CIPHERS }),
            client_cert_header: Type.Object(
              {
                name: Type.String({ default: '' }),
                trusted_proxies: Type.Array(Type.String(), { default: [] }),
              },
              { ...closed, default: {} },
            ),
          },
          { ...closed, default: {} },
        ),
        data_encryption: Type.Object(
          {
            enable_encrypt_fields: Type.Boolean({ default: true }),
            keyring: Type.Array(Type.String(), { default: ['qeddd145sfvddff3', 'edd1c9f0985e76a2'] }),
            ssl_trusted_certificate: Type.String({ default: '' }),
          },
          { ...closed, default: {} },
        ),
        access_log: Type.Object(
          {
            enable: Type.Boolean({ default: true }),
            path: Type.String({ minLength: 1, default: 'logs/access.log' }),
          },
          { ...closed, default: {} },
        ),
      },
      { ...closed, default: {} },
    ),
    nginx_config: Type.Object(
      {
        // APISIX's name (nginx time: seconds as a number, or "Nms" / "Ns" / "Nm"); APISIX's default
        // is 240s, ours stays under Kubernetes' 30 s grace period
        worker_shutdown_timeout: Type.Union([Type.Number({ minimum: 0 }), Type.String({ pattern: '^[0-9]+(ms|s|m)?$' })], { default: '20s' }),
        http: Type.Object(
          {
            // APISIX's names and defaults (nginx's client_body_timeout and send_timeout); 0 turns one off
            client_body_timeout: Type.Union([Type.Number({ minimum: 0 }), Type.String({ pattern: '^[0-9]+(ms|s|m)?$' })], { default: '60s' }),
            send_timeout: Type.Union([Type.Number({ minimum: 0 }), Type.String({ pattern: '^[0-9]+(ms|s|m)?$' })], { default: '10s' }),
          },
          { ...closed, default: {} },
        ),
      },
      { ...closed, default: {} },
    ),
    plugin_attr: Type.Object(
      {
        prometheus: Type.Object(
          {
            enable_export_server: Type.Boolean({ default: true }),
            export_addr: Type.Object(
              { ip: Type.String({ minLength: 1, default: '127.0.0.1' }), port: Type.Integer({ minimum: 1, maximum: 65535, default: 9091 }) },
              { ...closed, default: {} },
            ),
            export_uri: Type.String({ pattern: '^/', default: '/apisix/prometheus/metrics' }),
          },
          { ...closed, default: {} },
        ),
      },
      { ...closed, default: {} },
    ),
    deployment: Type.Object(
      {
        role: Type.Literal('traditional', { default: 'traditional' }),
        admin: Type.Object(
          {
            // APISIX 3.13's dashboard switch: the web UI at /ui/ on admin_listen
            enable_admin_ui: Type.Boolean({ default: true }),
            admin_key: Type.Array(
              Type.Object(
                {
                  name: Type.String({ minLength: 1 }),
                  key: Type.String({ minLength: 1 }),
                  role: Type.Union([Type.Literal('admin'), Type.Literal('viewer')]),
                },
                closed,
              ),
              { minItems: 1, default: [{ name: 'admin', key: 'edd1c9f034335f136f87ad84b625c8f1', role: 'admin' }] },
            ),
            admin_listen: Type.Object(
              { ip: Type.String({ minLength: 1, default: '127.0.0.1' }), port: Type.Integer({ minimum: 1, maximum: 65535, default: 9180 }) },
              { ...closed, default: {} },
            ),
            allow_admin: Type.Array(Type.String(), { default: ['127.0.0.0/24'] }),
          },
          { ...closed, default: {} },
        ),
        etcd: Type.Object(
          {
            host: Type.Array(Type.String(), { minItems: 1, default: ['http://127.0.0.1:2379'] }),
            prefix: Type.String({ pattern: '^/', default: '/apisix' }),
            timeout: Type.Number({ exclusiveMinimum: 0, default: 30 }),
            startup_retry: Type.Number({ minimum: 0, default: 60 }),
            user: Type.String({ default: '' }),
            password: Type.String({ default: '' }),
            tls: Type.Object(
              {
                cert: Type.String({ default: '' }),
                key: Type.String({ default: '' }),
                verify: Type.Boolean({ default: true }),
              },
              { ...closed, default: {} },
            ),
          },
          { ...closed, default: {} },
        ),
      },
      { ...closed, default: {} },
    ),
  },
  closed,
)

/** The validated, defaulted, frozen config. */
export type LocalConfig = Static<typeof ConfigSchema>

/** The example admin key shipped in conf/config.yaml (refused on a non-loopback admin address). */
export const EXAMPLE_ADMIN_KEY = 'edd1c9f034335f136f87ad84b625c8f1'

