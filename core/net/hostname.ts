import { domainToASCII } from 'node:url'

/**
 * Normalises a host name or SNI as APISIX compares them: lower case, one trailing dot removed,
 * IDNA to ASCII (punycode). A Host header's port and IPv6 brackets are removed.
 */
export function normalizeHost(raw: string): string {
  // most requests of a worker carry the Host header of the one before; two entries, because a
  // request asks for its Host header and then (misdirectedRequest) for the normalised name
  if (raw === lastRaw) return lastHost
  if (raw === prevRaw) return prevHost
  const h = normalizeHostOnce(raw)
  prevRaw = lastRaw
  prevHost = lastHost
  lastRaw = raw
  lastHost = h
  return h
}
let lastRaw = ''
let lastHost = ''
let prevRaw = ''
let prevHost = ''

function normalizeHostOnce(raw: string): string {
  let h = raw.trim()
  if (h.startsWith('[')) {
    const end = h.indexOf(']')
    return (end > 0 ? h.slice(1, end) : h).toLowerCase()
  }
  const colon = h.lastIndexOf(':')
  if (colon >= 0 && h.indexOf(':') === colon) h = h.slice(0, colon)
  if (h.endsWith('.')) h = h.slice(0, -1)
  h = h.toLowerCase()
  if (/[^\x00-\x7f]/.test(h)) {
    const ascii = domainToASCII(h)
    if (ascii) h = ascii
  }
  return h
}

/**
 * Normalises a TLS server name or an ssl object's sni pattern as APISIX compares them
 * (radixtree_sni): lower case, one trailing dot removed; nothing else is touched.
 */
export function normalizeSni(raw: string): string {
  const s = raw.endsWith('.') ? raw.slice(0, -1) : raw
  return s.toLowerCase()
}

/** True when `pattern` is a wildcard name (`*.example.com`). */
export const isWildcard = (pattern: string): boolean => pattern.startsWith('*.')

/**
 * Matches a normalised host against a normalised pattern: exact, or `*.a.com` covering exactly
 * one label (`x.a.com`, never `a.com` nor `y.x.a.com`).
 */
export function hostMatches(pattern: string, host: string): boolean {
  if (!isWildcard(pattern)) return pattern === host
  const suffix = pattern.slice(1) // ".a.com"
  if (!host.endsWith(suffix)) return false
  const label = host.slice(0, host.length - suffix.length)
  return label.length > 0 && !label.includes('.')
}
