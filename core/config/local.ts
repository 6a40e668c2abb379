import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { parse } from 'yaml'
import { ajv } from '../schema/ajv.js'
import { pathOf } from '../schema/describe.js'
import { deepFreeze } from '../schema/decode.js'
import { GatewayError } from '../errors.js'
import { checkCidr } from '../net/cidr.js'
import { HTTP_TOKEN } from '../net/http-syntax.js'
import { ConfigSchema, EXAMPLE_ADMIN_KEY, type LocalConfig } from './local-schema.js'
import { checkCiphers, parseProtocols, type TlsDefaults } from '../tls/settings.js'

const validate = ajv.compile<LocalConfig>(ConfigSchema as object)

/** Reads, parses and decodes config.yaml; throws GatewayError with a one-line reason naming the key. */
export function loadLocalConfig(file: string): LocalConfig {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new GatewayError('GW_CONF_READ', [file, (err as NodeJS.ErrnoException).code ?? String(err)], { cause: err })
  }
  let raw: unknown
  try {
    raw = parse(text, { uniqueKeys: true }) ?? {}
  } catch (err) {
    throw new GatewayError('GW_CONF_YAML', [file, firstLine((err as Error).message)], { cause: err })
  }
  return decodeLocalConfig(file, raw)
}

/** Validates an already-parsed config; throws GatewayError naming the key. */
export function decodeLocalConfig(file: string, raw: unknown): LocalConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new GatewayError('GW_CONF_INVALID', [file, '(top level)', 'must be a mapping'])
  }
  const copy = structuredClone(raw)
  if (!validate(copy)) {
    const e = validate.errors?.[0]
    const path = pathOf(e?.instancePath ?? '')
    if (e?.keyword === 'additionalProperties') {
      const extra = String(e.params['additionalProperty'])
      throw new GatewayError('GW_CONF_INVALID', [file, path ? `${path}.${extra}` : extra, 'unknown key'])
    }
    const union = validate.errors?.find((x) => x.keyword === 'anyOf')
    const unionPath = union ? pathOf(union.instancePath) : ''
    if (union && UNION_HINTS[unionPath] && path.startsWith(unionPath) && !/\[\d+\]\./.test(path.slice(unionPath.length))) {
      throw new GatewayError('GW_CONF_INVALID', [file, unionPath, UNION_HINTS[unionPath]])
    }
    if (union) {
      const consts = (validate.errors ?? []).filter((x) => x.keyword === 'const' && x.instancePath === union.instancePath)
      if (consts.length > 1 && consts.length === (validate.errors ?? []).filter((x) => x.instancePath === union.instancePath).length - 1) {
        throw new GatewayError('GW_CONF_INVALID', [file, unionPath, `must be one of ${consts.map((x) => JSON.stringify(x.params['allowedValue'])).join(', ')}`])
      }
    }
    if (e?.keyword === 'const') throw new GatewayError('GW_CONF_INVALID', [file, path, `must be ${JSON.stringify(e.params['allowedValue'])}`])
    const msg = e?.keyword === 'required' ? `${String(e.params['missingProperty'])} is required` : (e?.message ?? 'invalid')
    throw new GatewayError('GW_CONF_INVALID', [file, path || '(top level)', msg])
  }
  const problem = checkSemantics(copy)
  if (problem) throw new GatewayError('GW_CONF_INVALID', [file, problem[0], problem[1]])
  return deepFreeze(copy)
}

function checkSemantics(c: LocalConfig): [string, string] | undefined {
  const hosts = c.deployment.etcd.host
  for (const [i, h] of hosts.entries()) {
    let u: URL | undefined
    try {
      u = new URL(h)
    } catch {
      u = undefined
    }
    if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:') || !u.hostname) return [`deployment.etcd.host[${i}]`, 'must be an http(s) URL']
  }
  for (const [i, cidr] of c.deployment.admin.allow_admin.entries()) {
    const why = checkCidr(cidr)
    if (why) return [`deployment.admin.allow_admin[${i}]`, why]
  }
  for (const [i, cidr] of c.apisix.ssl.client_cert_header.trusted_proxies.entries()) {
    const why = checkCidr(cidr)
    if (why) return [`apisix.ssl.client_cert_header.trusted_proxies[${i}]`, why]
  }
  for (const [i, l] of c.apisix.ssl.listen.entries()) {
    if (l.enable_http2 !== undefined) return [`apisix.ssl.listen[${i}].enable_http2`, 'per-listener HTTP/2 is no longer supported; use apisix.enable_http2']
  }
  const protocols = parseProtocols(c.apisix.ssl.ssl_protocols)
  if (typeof protocols === 'string') return ['apisix.ssl.ssl_protocols', protocols]
  const ciphers = checkCiphers(c.apisix.ssl.ssl_ciphers)
  if (ciphers) return ['apisix.ssl.ssl_ciphers', ciphers]
  const name = c.apisix.ssl.client_cert_header.name
  if (name && !HTTP_TOKEN.test(name)) return ['apisix.ssl.client_cert_header.name', 'must be an HTTP header name']
  for (const [i, k] of c.apisix.data_encryption.keyring.entries()) {
    if (k.length !== 16 && k.length !== 32) return [`apisix.data_encryption.keyring[${i}]`, 'must be 16 or 32 characters (an AES-128 or AES-256 key)']
  }
  const ips: [string, string][] = [['deployment.admin.admin_listen.ip', c.deployment.admin.admin_listen.ip], ['plugin_attr.prometheus.export_addr.ip', c.plugin_attr.prometheus.export_addr.ip]]
  if (Array.isArray(c.apisix.node_listen)) c.apisix.node_listen.forEach((l, i) => ips.push([`apisix.node_listen[${i}].ip`, l.ip ?? '0.0.0.0']))
  c.apisix.ssl.listen.forEach((l, i) => ips.push([`apisix.ssl.listen[${i}].ip`, l.ip]))
  for (const [path, ip] of ips) if (!isIP(ip) && ip !== 'localhost') return [path, 'must be an IP address']
  const names = new Set<string>()
  for (const [i, k] of c.deployment.admin.admin_key.entries()) {
    if (names.has(k.name)) return [`deployment.admin.admin_key[${i}].name`, `duplicate name ${k.name}`]
    names.add(k.name)
  }
  if ((c.deployment.etcd.tls.cert === '') !== (c.deployment.etcd.tls.key === '')) return ['deployment.etcd.tls', 'cert and key must be set together']
  return undefined
}

/** apisix.ssl.ssl_protocols and ssl_ciphers as the TLS policies take them (the config was checked at load). */
export function tlsDefaults(c: LocalConfig): TlsDefaults {
  const protocols = parseProtocols(c.apisix.ssl.ssl_protocols)
  return { protocols: typeof protocols === 'string' ? [] : protocols, ciphers: c.apisix.ssl.ssl_ciphers }
}

/** True for loopback addresses (127.0.0.0/8, ::1, localhost). */
export const isLoopback = (ip: string): boolean => ip === 'localhost' || ip === '::1' || /^127\./.test(ip)

/** Throws when the admin API would listen beyond loopback with the example key. */
export function checkAdminKeySafety(file: string, c: LocalConfig): void {
  const ip = c.deployment.admin.admin_listen.ip
  if (!isLoopback(ip) && c.deployment.admin.admin_key.some((k) => k.key === EXAMPLE_ADMIN_KEY)) {
    throw new GatewayError('GW_CONF_UNSAFE_ADMIN_KEY', [file, ip])
  }
}

/** The data-plane plain HTTP listeners as {ip, port}. */
export function httpListeners(c: LocalConfig): { ip: string; port: number }[] {
  const nl = c.apisix.node_listen
  return typeof nl === 'number' ? [{ ip: '0.0.0.0', port: nl }] : nl.map((l) => ({ ip: l.ip ?? '0.0.0.0', port: l.port }))
}

/** Messages for the config's union-typed keys (Ajv's first branch error would mislead). */
const UNION_HINTS: Readonly<Record<string, string>> = {
  'apisix.workers': 'must be "auto" or a whole number from 1 to 256',
  'apisix.node_listen': 'must be a port number or a list of {ip, port}',
  'nginx_config.worker_shutdown_timeout': 'must be a number of seconds or a time like "500ms", "20s", "1m"',
  'nginx_config.http.client_body_timeout': 'must be a number of seconds or a time like "500ms", "60s", "1m"',
  'nginx_config.http.send_timeout': 'must be a number of seconds or a time like "500ms", "10s", "1m"',
}

const firstLine = (s: string): string => s.split('\n')[0] ?? s
