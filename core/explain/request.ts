/**
 * The body of `POST /apisix/admin/explain` (CONTRACT.md): what request to explain. Only `uri`
 * is required; every refusal names the field.
 */
import type { Result } from '../schema/decode.js'

/** A request to explain, with the contract's defaults filled. */
export interface ExplainRequest {
  /** the SNI the client sends; undefined: none */
  readonly sni: string | undefined
  /** the Host header (default: the SNI; undefined when neither is given) */
  readonly host: string | undefined
  /** the request target as sent: path and query */
  readonly uri: string
  readonly method: string
  readonly scheme: 'http' | 'https'
  /** PEM of the certificate the client presents, leaf first; undefined: none */
  readonly clientCert: string | undefined
  readonly remoteAddr: string
}

const FIELDS = new Set(['sni', 'host', 'uri', 'method', 'scheme', 'client_cert', 'remote_addr'])
const METHOD = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$/

const bad = (error: string): Result<ExplainRequest> => ({ ok: false, error })

/** Checks and defaults an explain body; the error names the field, as every admin 400 does. */
export function decodeExplainRequest(body: unknown): Result<ExplainRequest> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return bad('invalid explain request: the body must be a JSON object')
  const b = body as Record<string, unknown>
  for (const k of Object.keys(b)) if (!FIELDS.has(k)) return bad(`invalid explain request: additional properties forbidden, found ${k}`)
  const str = (name: string): string | undefined | Error => {
    const v = b[name]
    if (v === undefined) return undefined
    if (typeof v !== 'string') return new Error(`invalid explain request: property "${name}" must be a string`)
    return v
  }
  const sni = str('sni')
  const host = str('host')
  const uri = str('uri')
  const method = str('method')
  const scheme = str('scheme')
  const cert = str('client_cert')
  const addr = str('remote_addr')
  for (const v of [sni, host, uri, method, scheme, cert, addr]) if (v instanceof Error) return bad(v.message)
  if (uri === undefined) return bad('invalid explain request: property "uri" is required')
  if (uri === '' || /[\s\u0000-\u001f\u007f]/.test(uri as string)) return bad('invalid explain request: property "uri" must be a request target without spaces or control characters')
  if (sni !== undefined && !/^[A-Za-z0-9*._-]{1,253}$/.test(sni as string)) return bad('invalid explain request: property "sni" must be a host name')
  if (method !== undefined && !METHOD.test(method as string)) return bad('invalid explain request: property "method" must be an HTTP method token')
  if (scheme !== undefined && scheme !== 'http' && scheme !== 'https') return bad('invalid explain request: property "scheme" must be "http" or "https"')
  if (cert !== undefined && !(cert as string).includes('-----BEGIN CERTIFICATE-----')) return bad('invalid explain request: property "client_cert" must be a PEM certificate (leaf first)')
  if (addr !== undefined && !/^[0-9A-Fa-f:.]{2,45}$/.test(addr as string)) return bad('invalid explain request: property "remote_addr" must be an IP address')
  return {
    ok: true,
    value: {
      sni: sni as string | undefined,
      host: (host as string | undefined) ?? (sni as string | undefined),
      uri: uri as string,
      method: (method as string | undefined) ?? 'GET',
      scheme: (scheme as 'http' | 'https' | undefined) ?? 'https',
      clientCert: cert as string | undefined,
      remoteAddr: (addr as string | undefined) ?? '127.0.0.1',
    },
  }
}
