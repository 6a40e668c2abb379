import { createSecureContext, DEFAULT_CIPHERS, type TlsOptions } from 'node:tls'
import { constants as cryptoConstants } from 'node:crypto'

/**
 * The TLS settings every ssl object starts from: `apisix.ssl.ssl_protocols` and
 * `apisix.ssl.ssl_ciphers` (APISIX's defaults below), and the key-exchange groups (CONTRACT.md:
 * X25519MLKEM768 first where the runtime's OpenSSL has it, then X25519 and P-256).
 */

/** APISIX's `apisix.ssl.ssl_ciphers` default: TLS 1.2 and older; TLS 1.3 suites are the runtime's. */
export const APISIX_SSL_CIPHERS =
  'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384'
/** APISIX's `apisix.ssl.ssl_protocols` default (nginx's form: versions separated by spaces). */
export const APISIX_SSL_PROTOCOLS = 'TLSv1.2 TLSv1.3'

/** The versions an ssl object's or the config's `ssl_protocols` may name, oldest first. */
export const TLS_VERSIONS = ['TLSv1.1', 'TLSv1.2', 'TLSv1.3'] as const
export type TlsVersion = (typeof TLS_VERSIONS)[number]

/** What every policy server starts from: the config's versions and TLS 1.2 cipher list. */
export interface TlsDefaults {
  readonly protocols: readonly TlsVersion[]
  readonly ciphers: string
}

export const APISIX_TLS_DEFAULTS: TlsDefaults = Object.freeze({ protocols: Object.freeze(['TLSv1.2', 'TLSv1.3'] as const), ciphers: APISIX_SSL_CIPHERS })

/**
 * The groups offered for key exchange, in order. OpenSSL 3.5 (Node 24) has the hybrid
 * X25519MLKEM768 (TLS 1.3 only; a TLS 1.2 handshake skips it); an older OpenSSL refuses its name,
 * so the list is probed once. A plain list (no `/` tuples) lets the server take whichever of
 * these the client sent a key share for, without a HelloRetryRequest.
 */
export const KEY_EXCHANGE_GROUPS: string = (() => {
  try {
    createSecureContext({ ecdhCurve: 'X25519MLKEM768' })
    return 'X25519MLKEM768:X25519:P-256'
  } catch {
    return 'X25519:P-256'
  }
})()

/** The runtime's TLS 1.3 suites (Node's `ciphers` option sets both lists; without TLS_ names TLS 1.3 would have none). */
const TLS13_SUITES = DEFAULT_CIPHERS.split(':').filter((c) => c.startsWith('TLS_')).join(':')

/** `apisix.ssl.ssl_protocols` → its versions; a string naming the problem when a word is not one. */
export function parseProtocols(text: string): TlsVersion[] | string {
  const words = text.split(/\s+/).filter((w) => w !== '')
  if (words.length === 0) return `must name at least one of ${TLS_VERSIONS.join(', ')}`
  for (const w of words) if (!(TLS_VERSIONS as readonly string[]).includes(w)) return `${JSON.stringify(w)} is not one of ${TLS_VERSIONS.join(', ')}`
  return TLS_VERSIONS.filter((v) => words.includes(v))
}

/** Node's `ciphers` option for a TLS 1.2 cipher list: the runtime's TLS 1.3 suites unless the list names its own. */
export function cipherOption(ciphers: string, seclevel0: boolean): string {
  const own13 = ciphers.split(':').some((c) => c.startsWith('TLS_'))
  return `${own13 ? '' : `${TLS13_SUITES}:`}${ciphers}${seclevel0 ? ':@SECLEVEL=0' : ''}`
}

/** `apisix.ssl.ssl_ciphers` checked by OpenSSL itself; a string naming the problem when it selects no cipher. */
export function checkCiphers(ciphers: string): string | undefined {
  try {
    createSecureContext({ ciphers: cipherOption(ciphers, false) })
    return undefined
  } catch (err) {
    return `OpenSSL accepts none of these ciphers (${err instanceof Error ? err.message : String(err)})`
  }
}

const NO_FLAG: Readonly<Record<TlsVersion, number>> = {
  'TLSv1.1': cryptoConstants.SSL_OP_NO_TLSv1_1,
  'TLSv1.2': cryptoConstants.SSL_OP_NO_TLSv1_2,
  'TLSv1.3': cryptoConstants.SSL_OP_NO_TLSv1_3,
}

/**
 * An object's `ssl_protocols` (absent: the config's) → Node's options: min and max version, a NO_
 * flag for a gap (TLSv1.1 and TLSv1.3 without TLSv1.2), the cipher list with the runtime's TLS 1.3
 * suites, `@SECLEVEL=0` when TLSv1.1 is allowed (OpenSSL 3 refuses it at the default level,
 * DESIGN.md §4; it also needs a cipher TLS 1.1 can use in the list, as in APISIX), and the groups.
 */
export function protocolOptions(protocols: readonly string[] | undefined, defaults: TlsDefaults = APISIX_TLS_DEFAULTS): Pick<TlsOptions, 'minVersion' | 'maxVersion' | 'secureOptions' | 'ciphers' | 'ecdhCurve'> {
  const wanted = TLS_VERSIONS.filter((v) => (protocols ?? defaults.protocols).includes(v))
  const first = wanted[0] ?? 'TLSv1.2'
  const last = wanted[wanted.length - 1] ?? 'TLSv1.3'
  let secureOptions = 0
  for (const v of TLS_VERSIONS.slice(TLS_VERSIONS.indexOf(first), TLS_VERSIONS.indexOf(last) + 1)) if (!wanted.includes(v)) secureOptions |= NO_FLAG[v]
  return {
    minVersion: first,
    maxVersion: last,
    ...(secureOptions ? { secureOptions } : {}),
    ciphers: cipherOption(defaults.ciphers, wanted.includes('TLSv1.1')),
    ecdhCurve: KEY_EXCHANGE_GROUPS,
  }
}
