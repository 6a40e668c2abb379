/**
 * A strict JSON reader for tests (RFC 8259): what JSON.parse accepts, except that an object
 * naming one key twice is an error (JSON.parse keeps the last one; log shippers differ). Throws
 * with the position of the first problem.
 */
export function parseStrictJson(text: string): unknown {
  let i = 0
  const fail = (why: string): never => {
    throw new SyntaxError(`${why} at position ${i}`)
  }
  const ws = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++
  }
  const string = (): string => {
    const start = i
    i++ // the opening quote
    for (; i < text.length; i++) {
      const c = text.charCodeAt(i)
      if (c === 0x22) {
        i++
        return JSON.parse(text.slice(start, i)) as string
      }
      if (c === 0x5c) i++
      else if (c < 0x20) fail('control character in a string')
    }
    return fail('unterminated string')
  }
  const value = (): unknown => {
    ws()
    const c = text[i]
    if (c === '{') {
      i++
      const out: Record<string, unknown> = {}
      const keys = new Set<string>()
      ws()
      if (text[i] === '}') return i++, out
      for (;;) {
        ws()
        if (text[i] !== '"') fail('expected a key')
        const key = string()
        if (keys.has(key)) fail(`duplicate key ${JSON.stringify(key)}`)
        keys.add(key)
        ws()
        if (text[i++] !== ':') fail('expected ":"')
        out[key] = value()
        ws()
        const sep = text[i++]
        if (sep === '}') return out
        if (sep !== ',') fail('expected "," or "}"')
      }
    }
    if (c === '[') {
      i++
      const out: unknown[] = []
      ws()
      if (text[i] === ']') return i++, out
      for (;;) {
        out.push(value())
        ws()
        const sep = text[i++]
        if (sep === ']') return out
        if (sep !== ',') fail('expected "," or "]"')
      }
    }
    if (c === '"') return string()
    const m = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i, i + 400))
    if (!m) return fail('unexpected character')
    i += m[0].length
    return JSON.parse(m[0])
  }
  const v = value()
  ws()
  if (i !== text.length) fail('text after the value')
  return v
}
