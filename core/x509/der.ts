/** One DER element: its identifier and where its header and content sit in the buffer. */
export interface DerNode {
  /** Tag class (0 universal, 1 application, 2 context, 3 private). */
  readonly cls: number
  readonly constructed: boolean
  /** Tag number (high-tag-number form decoded). */
  readonly tag: number
  /** Offset of the identifier octet. */
  readonly start: number
  /** Offset of the first content octet. */
  readonly contentStart: number
  /** Offset just past the content. */
  readonly end: number
}

/** Thrown (and caught by this module's callers) when the bytes are not DER we can walk. */
export class DerError extends Error {
  override readonly name = 'DerError'
}

/** Reads the element starting at `at`; it must end by `limit`. Throws DerError on bad input. */
export function readDer(buf: Uint8Array, at: number, limit: number = buf.length): DerNode {
  let p = at
  const need = (n: number) => {
    if (p + n > limit) throw new DerError(`truncated element at ${at}`)
  }
  need(2)
  const id = buf[p++]!
  const cls = id >> 6
  const constructed = (id & 0x20) !== 0
  let tag = id & 0x1f
  if (tag === 0x1f) {
    tag = 0
    for (let i = 0; ; i++) {
      need(1)
      const b = buf[p++]!
      tag = tag * 128 + (b & 0x7f)
      if ((b & 0x80) === 0) break
      if (i > 3) throw new DerError(`tag number too large at ${at}`)
    }
  }
  need(1)
  let len = buf[p++]!
  if (len & 0x80) {
    const n = len & 0x7f
    if (n === 0 || n > 4) throw new DerError(`unsupported length form at ${at}`)
    need(n)
    len = 0
    for (let i = 0; i < n; i++) len = len * 256 + buf[p++]!
  }
  if (p + len > limit) throw new DerError(`element at ${at} runs past its container`)
  return { cls, constructed, tag, start: at, contentStart: p, end: p + len }
}

/** The elements directly inside a constructed element, in order. */
export function children(buf: Uint8Array, node: DerNode): DerNode[] {
  const out: DerNode[] = []
  for (let p = node.contentStart; p < node.end; ) {
    const c = readDer(buf, p, node.end)
    out.push(c)
    p = c.end
  }
  return out
}

/** Asserts a universal tag and returns the node, for readable walking code. */
export function expectTag(node: DerNode | undefined, tag: number, what: string): DerNode {
  if (!node || node.cls !== 0 || node.tag !== tag) throw new DerError(`expected ${what}`)
  return node
}

/** Dotted form of an OBJECT IDENTIFIER's content octets. */
export function decodeOid(bytes: Uint8Array): string {
  if (bytes.length === 0) throw new DerError('empty OID')
  const parts: number[] = []
  let v = 0
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!
    v = v * 128 + (b & 0x7f)
    if (v > Number.MAX_SAFE_INTEGER / 128) throw new DerError('OID arc too large')
    if ((b & 0x80) === 0) {
      if (parts.length === 0) {
        const first = v < 40 ? 0 : v < 80 ? 1 : 2
        parts.push(first, v - first * 40)
      } else parts.push(v)
      v = 0
    } else if (i === bytes.length - 1) throw new DerError('truncated OID')
  }
  return parts.join('.')
}

/** Universal tag numbers this project reads. */
export const TAG = {
  INTEGER: 2,
  BIT_STRING: 3,
  OID: 6,
  UTF8_STRING: 12,
  SEQUENCE: 16,
  SET: 17,
  UTC_TIME: 23,
  GENERALIZED_TIME: 24,
} as const
