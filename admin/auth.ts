import { createHash, timingSafeEqual } from 'node:crypto'
import { buildCidrSet, type CidrSet } from '../core/net/cidr.js'
import { errorAnswer, type ErrorAnswer } from '../core/errors.js'

/** One configured admin key. */
export interface AdminKey {
  readonly name: string
  readonly key: string
  readonly role: 'admin' | 'viewer'
}

/** The outcome of checking a request: allowed (with the key's role), or an error answer. */
export type AuthVerdict = { ok: true; role: 'admin' | 'viewer' } | ({ ok: false } & ErrorAnswer)

/** What a request brings for the check. */
export interface AuthInput {
  readonly method: string
  readonly remoteAddr: string | undefined
  readonly headers: Readonly<Record<string, string | string[] | undefined>>
  readonly query: URLSearchParams
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest()
const first = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v)

function cookieToken(cookie: string | undefined): string | undefined {
  if (!cookie) return undefined
  for (const part of cookie.split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === 'x_api_key') return part.slice(eq + 1).trim()
  }
  return undefined
}

/**
 * Builds the admin's access check (spec §3.1): the client address must be in `allow_admin`
 * (empty: everyone) → else 403; the token (header X-API-KEY, query `api_key`, cookie
 * `x_api_key`, APISIX's order) must equal a configured key, compared in constant time against
 * every key → else 401; a viewer key may only read → else 403.
 */
export function buildAuth(keys: readonly AdminKey[], allowAdmin: readonly string[]): (req: AuthInput) => AuthVerdict {
  const allowed: CidrSet | undefined = allowAdmin.length > 0 ? buildCidrSet(allowAdmin) : undefined
  const hashed = keys.map((k) => ({ role: k.role, digest: digest(k.key) }))
  return (req) => {
    if (allowed && !(req.remoteAddr && allowed.has(req.remoteAddr))) {
      return { ok: false, ...errorAnswer('GW_ADMIN_FORBIDDEN', req.remoteAddr ?? '?') }
    }
    const token = req.query.get('api_key') ?? first(req.headers['x-api-key']) ?? first(req.headers['x_api_key']) ?? cookieToken(first(req.headers['cookie']))
    if (token === undefined || token === '') return { ok: false, ...errorAnswer('GW_ADMIN_NO_KEY') }
    const d = digest(token)
    let role: 'admin' | 'viewer' | undefined
    // no early exit: every key is compared, so timing tells nothing about which one matched
    for (const k of hashed) if (timingSafeEqual(d, k.digest) && role === undefined) role = k.role
    if (role === undefined) return { ok: false, ...errorAnswer('GW_ADMIN_WRONG_KEY') }
    if (role === 'viewer' && req.method !== 'GET' && req.method !== 'HEAD') {
      return { ok: false, ...errorAnswer('GW_ADMIN_READ_ONLY') }
    }
    return { ok: true, role }
  }
}
