/** A strict reader of Prometheus text format 0.0.4, for tests that check a scrape. */

export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

export interface Scrape {
  readonly help: ReadonlyMap<string, string>
  readonly type: ReadonlyMap<string, string>
  readonly samples: readonly Sample[]
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/

function parseValue(text: string, line: string): number {
  if (text === '+Inf') return Infinity
  if (text === '-Inf') return -Infinity
  if (text === 'NaN') return NaN
  const v = Number(text)
  if (text === '' || Number.isNaN(v)) throw new Error(`bad value in: ${line}`)
  return v
}

function unescapeHelp(s: string): string {
  return s.replace(/\\(\\|n)/g, (_, c: string) => (c === 'n' ? '\n' : '\\'))
}

/** Parses one exposition; throws on any line that is not valid 0.0.4. */
export function parsePrometheus(text: string): Scrape {
  const help = new Map<string, string>()
  const type = new Map<string, string>()
  const samples: Sample[] = []
  if (text !== '' && !text.endsWith('\n')) throw new Error('exposition must end with a line feed')
  for (const line of text.split('\n')) {
    if (line === '') continue
    if (line.startsWith('# HELP ')) {
      const rest = line.slice(7)
      const name = NAME.exec(rest)?.[0]
      if (name === undefined || rest[name.length] !== ' ') throw new Error(`bad HELP: ${line}`)
      help.set(name, unescapeHelp(rest.slice(name.length + 1)))
      continue
    }
    if (line.startsWith('# TYPE ')) {
      const [name, t, ...more] = line.slice(7).split(' ')
      if (name === undefined || t === undefined || more.length > 0 || !['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(t))
        throw new Error(`bad TYPE: ${line}`)
      type.set(name, t)
      continue
    }
    if (line.startsWith('#')) continue
    const name = NAME.exec(line)?.[0]
    if (name === undefined) throw new Error(`bad sample: ${line}`)
    let i = name.length
    const labels: Record<string, string> = {}
    if (line[i] === '{') {
      i++
      while (line[i] !== '}') {
        const ln = NAME.exec(line.slice(i))?.[0]
        if (ln === undefined || line[i + ln.length] !== '=' || line[i + ln.length + 1] !== '"') throw new Error(`bad label at ${i}: ${line}`)
        i += ln.length + 2
        let value = ''
        for (;;) {
          const c = line[i]
          if (c === undefined) throw new Error(`unterminated label value: ${line}`)
          if (c === '"') break
          if (c === '\\') {
            const e = line[i + 1]
            if (e === 'n') value += '\n'
            else if (e === '\\' || e === '"') value += e
            else throw new Error(`bad escape in: ${line}`)
            i += 2
            continue
          }
          value += c
          i++
        }
        i++
        if (ln in labels) throw new Error(`duplicate label ${ln}: ${line}`)
        labels[ln] = value
        if (line[i] === ',') i++
        else if (line[i] !== '}') throw new Error(`bad label list: ${line}`)
      }
      i++
    }
    if (line[i] !== ' ') throw new Error(`missing value: ${line}`)
    samples.push({ name, labels, value: parseValue(line.slice(i + 1), line) })
  }
  return { help, type, samples }
}

/** The samples named `name` whose labels include every pair of `match`. */
export function find(scrape: Scrape, name: string, match: Readonly<Record<string, string>> = {}): Sample[] {
  return scrape.samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v))
}
