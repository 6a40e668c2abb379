import { X509Certificate } from 'node:crypto'
import { dirOf, keyOf } from '../core/etcd/keys.js'
import type { ResourceName } from '../core/etcd/keys.js'
import type { Registry } from '../core/resources/registry.js'
import type { PluginLookup } from '../core/resources/plugins.js'
import { pluginWarnings } from '../core/resources/plugins.js'
import { checkCertKeyPair, inspectSsl, snisOf, sslWarnings, type Ssl } from '../core/resources/ssl.js'
import type { Upstream } from '../core/resources/upstream.js'
import type { Route } from '../core/resources/route.js'
import type { Consumer } from '../core/resources/consumer.js'
import { checkVars } from '../core/resources/vars.js'
import { checkPattern } from '../core/resources/regex.js'
import { encryptKey } from '../core/resources/key-crypto.js'
import { expiryWarning } from '../core/x509/server-cert.js'
import { checkConsumerCertificates, normalizeCertificate, type CertConsumer } from '../core/plugins/consumer-index.js'
import { fail, ok, type Result } from '../core/schema/decode.js'
import { isObject } from './patch.js'
import type { KvStore } from './kv.js'

/** What the admin's checks need besides the object. */
export interface AdmitContext {
  readonly registry: Registry
  readonly plugins: PluginLookup
  readonly keyring: readonly string[]
  readonly store: KvStore
  readonly prefix: string
  readonly nowMs: number
}

/** An object ready to store (private keys encrypted) and the warnings for the envelope. */
export interface Admitted {
  readonly stored: Record<string, unknown>
  readonly warnings: readonly string[]
  /**
   * An ssl object taking part in SNI matching: its normalised SNIs. Other objects claiming one
   * of them add a warning each, looked up after the write (admin/sni-claims.ts).
   */
  readonly sniNames?: readonly string[]
}

type Obj = Record<string, unknown>
type Plugins = Readonly<Record<string, Readonly<Record<string, unknown>>>>

/**
 * Everything the admin checks before a write (spec §1.2, §2): the shared decoder (schema,
 * defaults, cross-field rules, plugin schemas), then what only the admin does: PEM parsing and
 * key matching, linear-time regexes, references to other objects, certificate ownership; then
 * private keys are encrypted with the first keyring entry. `obj` is what will be stored.
 */
export async function admit(ctx: AdmitContext, res: ResourceName, obj: Obj, selfKey: string): Promise<Result<Admitted>> {
  const decoded = ctx.registry[res].decode(obj)
  if (!decoded.ok) return decoded
  const warnings: string[] = []
  let why: string | undefined
  let sniNames: readonly string[] | undefined
  switch (res) {
    case 'ssls': {
      const r = await admitSsl(ctx, decoded.value as Ssl, warnings)
      if (r.ok) sniNames = r.value
      else why = r.error
      break
    }
    case 'routes': {
      const r = decoded.value as Route
      why = linearPatterns(r.vars, r.plugins) ?? (await routeReferences(ctx, r)) ?? (r.upstream ? await admitUpstream(ctx, r.upstream, 'upstream.') : undefined)
      if (r.plugins) warnings.push(...pluginWarnings(r.plugins, ctx.plugins))
      break
    }
    case 'upstreams':
      why = await admitUpstream(ctx, decoded.value as Upstream, '')
      break
    case 'consumers':
      why = await admitConsumer(ctx, decoded.value as Consumer, selfKey, warnings)
      break
    case 'global_rules': {
      const plugins = (decoded.value as { plugins: Plugins }).plugins
      why = linearPatterns(undefined, plugins)
      warnings.push(...pluginWarnings(plugins, ctx.plugins))
      break
    }
  }
  if (why) return fail(why)
  return ok({ stored: encryptKeys(res, obj, ctx.keyring), warnings, ...(sniNames ? { sniNames } : {}) })
}

async function admitSsl(ctx: AdmitContext, ssl: Ssl, warnings: string[]): Promise<Result<readonly string[] | undefined>> {
  const facts = inspectSsl(ssl, ctx.keyring)
  if (!facts.ok) return fail(facts.error)
  warnings.push(...sslWarnings(ssl, facts.value, ctx.nowMs))
  // the names other objects may share: looked up once the object is written (crud.ts)
  return ok(ssl.type === 'server' && ssl.status === 1 ? snisOf(ssl) : undefined)
}

async function admitUpstream(ctx: AdmitContext, u: Upstream, where: string): Promise<string | undefined> {
  const tls = u.tls
  if (!tls) return undefined
  if (tls.client_cert !== undefined && tls.client_key !== undefined) {
    const pair = checkCertKeyPair(tls.client_cert, tls.client_key, ctx.keyring)
    if (!pair.ok) return `${where}tls: ${pair.error}`
  }
  if (tls.client_cert_id !== undefined) {
    const id = String(tls.client_cert_id)
    const ssl = await ctx.store.get(keyOf(ctx.prefix, 'ssls', id))
    if (!ssl) return `failed to fetch ssl info by ssl id [${id}], response code: 404`
    if (!isObject(ssl.value) || ssl.value['type'] !== 'client') return `failed to fetch ssl info by ssl id [${id}], wrong ssl type`
  }
  return undefined
}

async function routeReferences(ctx: AdmitContext, r: Route): Promise<string | undefined> {
  if (r.upstream_id !== undefined) {
    const id = String(r.upstream_id)
    if (!(await ctx.store.get(keyOf(ctx.prefix, 'upstreams', id)))) return `failed to fetch upstream info by upstream id [${id}], response code: 404`
  }
  // this gateway has no services or plugin configs: such references can never resolve
  if (r.service_id !== undefined) return `failed to fetch service info by service id [${String(r.service_id)}], response code: 404`
  if (r.plugin_config_id !== undefined) {
    return `failed to fetch plugin config info by plugin config id [${String(r.plugin_config_id)}], response code: 404`
  }
  return undefined
}

/** Patterns that run on requests must run in linear time (CONTRACT.md "Regular expressions"). */
function linearPatterns(vars: unknown, plugins: Plugins | undefined): string | undefined {
  if (vars !== undefined) {
    const why = checkVars(vars, true)
    if (why) return why
  }
  const regexUri = plugins?.['proxy-rewrite']?.['regex_uri']
  if (Array.isArray(regexUri)) {
    for (let i = 0; i < regexUri.length; i += 2) {
      const p: unknown = regexUri[i]
      const why = typeof p === 'string' ? checkPattern(p, true) : undefined
      if (why) return `failed to check the configuration of plugin proxy-rewrite err: property "regex_uri[${i}]" validation failed: ${why}`
    }
  }
  return undefined
}

async function admitConsumer(ctx: AdmitContext, c: Consumer, selfKey: string, warnings: string[]): Promise<string | undefined> {
  const certs = certificatesOf(c)
  if (certs.length === 0) return undefined
  // PEM or base64 of DER; malformed entries were refused by the plugin's checkConsumer already
  for (const [i, s] of certs.entries()) {
    const r = normalizeCertificate(s)
    if (!r.ok) return `failed to check the configuration of plugin mtls-auth err: certificates[${i}]: ${r.error}`
    const w = expiryWarning(new X509Certificate(r.der), ctx.nowMs, `mtls-auth certificates[${i}]`)
    if (w) warnings.push(w)
  }
  const others: CertConsumer[] = []
  for (const other of await ctx.store.list(dirOf(ctx.prefix, 'consumers'))) {
    if (other.key === selfKey || !isObject(other.value)) continue
    const username = typeof other.value['username'] === 'string' ? other.value['username'] : lastSegment(other.key)
    others.push({ username, plugins: isObject(other.value['plugins']) ? other.value['plugins'] : undefined })
  }
  const why = checkConsumerCertificates(c.username, certs, others)
  return why === undefined ? undefined : `mtls-auth ${why}`
}

function certificatesOf(c: Obj | Consumer): unknown[] {
  const plugins = c['plugins' as keyof typeof c]
  const conf = isObject(plugins) ? plugins['mtls-auth'] : undefined
  const list = isObject(conf) ? conf['certificates'] : undefined
  return Array.isArray(list) ? list : []
}

/** Encrypts `key`, `keys` and upstream `tls.client_key` (spec §1.5); other fields are untouched. */
export function encryptKeys(res: ResourceName, obj: Obj, keyring: readonly string[]): Obj {
  const out: Obj = { ...obj }
  if (res === 'ssls') {
    if (typeof out['key'] === 'string') out['key'] = encryptKey(out['key'], keyring)
    if (Array.isArray(out['keys'])) out['keys'] = out['keys'].map((k: unknown) => (typeof k === 'string' ? encryptKey(k, keyring) : k))
  }
  const encTls = (u: Obj): Obj => {
    const tls = u['tls']
    if (!isObject(tls) || typeof tls['client_key'] !== 'string') return u
    return { ...u, tls: { ...tls, client_key: encryptKey(tls['client_key'], keyring) } }
  }
  if (res === 'upstreams') return encTls(out)
  if (res === 'routes' && isObject(out['upstream'])) out['upstream'] = encTls(out['upstream'])
  return out
}

const lastSegment = (key: string): string => key.slice(key.lastIndexOf('/') + 1)
