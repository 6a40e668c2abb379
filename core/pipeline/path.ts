/**
 * The request target → nginx's `$uri` (ngx_http_parse_complex_uri with merge_slashes on).
 *
 * The path this returns is the one thing that is matched by skip_mtls_uri_regex, routed and
 * proxied, so every decision here is a security decision: one decoding pass, dot segments
 * resolved after decoding (so `%2e%2e` and `%2F` count), and refusals instead of guesses.
 */

import { checkAuthority, isHttpScheme } from './authority.js'

/** A normalised request target, or the reason it must be answered with 400. */
export type ParsedTarget =
  | {
      readonly ok: true
      /** `$uri`: percent-decoded once, dot segments resolved, repeated slashes merged. */
      readonly path: string
      /** `$args`: the raw text after the first `?` ('' when there is none). */
      readonly query: string
      /** The raw path as the client sent it (no query, no fragment). */
      readonly rawPath: string
      /** The authority of an absolute-form target (`GET http://a.com/x`), else undefined. */
      readonly authority: string | undefined
    }
  | { readonly ok: false; readonly reason: string }

const utf8 = new TextDecoder('utf-8', { fatal: true })

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30
  const l = c | 0x20
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10
  return -1
}

/** True when the raw path is already its own normal form: ASCII, no `%`, no `//`, no `/.`. */
function isPlain(p: string): boolean {
  for (let i = 0; i < p.length; i++) {
    const c = p.charCodeAt(i)
    if (c === 0x25 || c < 0x21 || c > 0x7e) return false
    if (c === 0x2f) {
      const n = p.charCodeAt(i + 1)
      if (n === 0x2f || n === 0x2e) return false
    }
  }
  return true
}

const refuse = (reason: string): ParsedTarget => ({ ok: false, reason })

/** Percent-decodes once into bytes; raw characters are taken as latin1 bytes (how Node hands them over). */
function decodeBytes(raw: string): number[] | string {
  const out: number[] = []
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i)
    if (c === 0x25) {
      const hi = hexValue(raw.charCodeAt(i + 1))
      const lo = hexValue(raw.charCodeAt(i + 2))
      if (hi < 0 || lo < 0) return 'invalid percent-encoding'
      const b = (hi << 4) | lo
      // nginx refuses a decoded NUL (it would cut C strings, and a path with one names nothing)
      if (b === 0) return 'percent-encoded NUL'
      out.push(b)
      i += 2
    } else if (c > 0xff) {
      // not from an HTTP parser (those give latin1); encode as UTF-8 so the result is the same text
      for (const b of Buffer.from(String.fromCharCode(c), 'utf8')) out.push(b)
    } else {
      out.push(c)
    }
  }
  return out
}

/**
 * Resolves `.`, `..` and empty segments over decoded bytes, like nginx's sw_slash/sw_dot states:
 * a path ending in a dot segment keeps its trailing slash; `..` above the root is refused.
 */
function resolveSegments(bytes: readonly number[]): number[] | undefined {
  const stack: number[][] = []
  let seg: number[] = []
  let trailingSlash = false
  // bytes[0] is always '/', so each segment ends at the next '/' or at the end
  for (let i = 1; i <= bytes.length; i++) {
    const b = i < bytes.length ? bytes[i]! : 0x2f
    if (b !== 0x2f) {
      seg.push(b)
      continue
    }
    const end = i === bytes.length
    if (seg.length === 0) {
      trailingSlash = true // merged slash, or the path's own trailing slash
    } else if (seg.length === 1 && seg[0] === 0x2e) {
      trailingSlash = true
    } else if (seg.length === 2 && seg[0] === 0x2e && seg[1] === 0x2e) {
      if (stack.length === 0) return undefined
      stack.pop()
      trailingSlash = true
    } else {
      stack.push(seg)
      trailingSlash = !end
    }
    seg = []
  }
  const out: number[] = [0x2f]
  stack.forEach((s, i) => {
    if (i > 0) out.push(0x2f)
    for (const b of s) out.push(b)
  })
  if (trailingSlash && stack.length > 0) out.push(0x2f)
  return out
}

/**
 * Parses a request target (`req.url`) into nginx's `$uri` and `$args`. Refuses (→ 400) what
 * nginx refuses: a bad `%` escape, a decoded NUL, `..` above the root, a target that is
 * neither origin-form nor absolute-form, and an absolute-form target that is not http(s) or
 * whose authority is not a plain host and port (authority.ts). Also refuses decoded bytes that
 * are not UTF-8, since a JS string cannot carry them faithfully (nginx would pass them through).
 */
export function parseTarget(target: string): ParsedTarget {
  let authority: string | undefined
  let rest = target
  if (!rest.startsWith('/')) {
    // absolute-form (RFC 9112 §3.2.2): scheme "://" authority path-abempty
    const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)/.exec(rest)
    if (!m) return refuse('request target is not a path')
    if (!isHttpScheme(m[1]!)) return refuse('request target is not an http or https URI')
    authority = m[2]!
    const bad = checkAuthority(authority)
    if (bad) return refuse(bad)
    rest = rest.slice(m[0].length)
    if (!rest.startsWith('/')) rest = `/${rest}`
  }
  const hash = rest.indexOf('#')
  if (hash >= 0) rest = rest.slice(0, hash) // a fragment is never part of the path (nginx drops it)
  const q = rest.indexOf('?')
  const rawPath = q >= 0 ? rest.slice(0, q) : rest
  const query = q >= 0 ? rest.slice(q + 1) : ''
  if (isPlain(rawPath)) return { ok: true, path: rawPath, query, rawPath, authority }
  const bytes = decodeBytes(rawPath)
  if (typeof bytes === 'string') return refuse(bytes)
  const resolved = resolveSegments(bytes)
  if (!resolved) return refuse('path goes above the root')
  let path: string
  try {
    path = utf8.decode(Uint8Array.from(resolved))
  } catch {
    return refuse('path is not valid UTF-8')
  }
  return { ok: true, path, query, rawPath, authority }
}
