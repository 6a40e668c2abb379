import { isIP } from 'node:net'

/** A compiled set of CIDRs; `has(addr)` tests an address (IPv4, IPv6, IPv4-mapped IPv6). */
export interface CidrSet {
  has(addr: string): boolean
}

interface Range {
  readonly v6: boolean
  readonly net: bigint
  readonly mask: bigint
}

function v4ToBig(addr: string): bigint | undefined {
  const parts = addr.split('.')
  if (parts.length !== 4) return undefined
  let n = 0n
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined
    const v = Number(p)
    if (v > 255) return undefined
    n = (n << 8n) | BigInt(v)
  }
  return n
}

function v6ToBig(addr: string): bigint | undefined {
  let a = addr.split('%')[0] ?? ''
  const lastColon = a.lastIndexOf(':')
  const last = a.slice(lastColon + 1)
  if (last.includes('.')) {
    // embedded IPv4 (::ffff:1.2.3.4): rewrite as two hex groups
    const v4 = v4ToBig(last)
    if (v4 === undefined) return undefined
    a = `${a.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`
  }
  const halves = a.split('::')
  if (halves.length > 2) return undefined
  const parse = (s: string): bigint[] | undefined => {
    if (s === '') return []
    const out: bigint[] = []
    for (const h of s.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(h)) return undefined
      out.push(BigInt(parseInt(h, 16)))
    }
    return out
  }
  const head = parse(halves[0] ?? '')
  const rest = halves.length === 2 ? parse(halves[1] ?? '') : []
  if (!head || !rest) return undefined
  const total = head.length + rest.length
  if (halves.length === 2 ? total > 7 : total !== 8) return undefined
  const words = [...head, ...Array<bigint>(8 - total).fill(0n), ...rest]
  return words.reduce((acc, w) => (acc << 16n) | w, 0n)
}

/** Parses an address into (v6?, value), mapping ::ffff:a.b.c.d to IPv4. */
export function parseAddress(addr: string): { v6: boolean; value: bigint } | undefined {
  const kind = isIP(addr.split('%')[0] ?? '')
  if (kind === 4) {
    const v = v4ToBig(addr)
    return v === undefined ? undefined : { v6: false, value: v }
  }
  if (kind === 6) {
    const v = v6ToBig(addr)
    if (v === undefined) return undefined
    if (v >> 32n === 0xffffn) return { v6: false, value: v & 0xffffffffn }
    return { v6: true, value: v }
  }
  return undefined
}

/** Checks one CIDR or address; returns a message naming the problem, or undefined. */
export function checkCidr(cidr: string): string | undefined {
  return parseRange(cidr) ? undefined : `${JSON.stringify(cidr)} is not an IP address or CIDR`
}

function parseRange(cidr: string): Range | undefined {
  const slash = cidr.indexOf('/')
  const addr = slash >= 0 ? cidr.slice(0, slash) : cidr
  const parsed = parseAddress(addr)
  if (!parsed) return undefined
  const bits = parsed.v6 ? 128 : 32
  let len = bits
  if (slash >= 0) {
    const l = cidr.slice(slash + 1)
    if (!/^\d{1,3}$/.test(l)) return undefined
    len = Number(l)
    // an IPv4-mapped IPv6 CIDR (::ffff:10.0.0.0/104) is kept as its IPv4 form
    if (!parsed.v6 && isIP(addr) === 6) len -= 96
    if (len < 0 || len > bits) return undefined
  }
  const all = (1n << BigInt(bits)) - 1n
  const mask = len === 0 ? 0n : (all << BigInt(bits - len)) & all
  return { v6: parsed.v6, net: parsed.value & mask, mask }
}

/** Compiles a list of CIDRs (or plain addresses); throws on an invalid entry (validate first with checkCidr). */
export function buildCidrSet(cidrs: readonly string[]): CidrSet {
  const ranges = cidrs.map((c) => {
    const r = parseRange(c)
    if (!r) throw new Error(checkCidr(c))
    return r
  })
  return {
    has(addr: string): boolean {
      if (ranges.length === 0) return false
      const a = parseAddress(addr)
      if (!a) return false
      for (const r of ranges) if (r.v6 === a.v6 && (a.value & r.mask) === r.net) return true
      return false
    },
  }
}
