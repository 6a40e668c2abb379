import t from 'tap'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

// docs/architecture.md "Import table": data flows one way; `import type` is exempt.
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')

function sources(dir: string): string[] {
  const out: string[] = []
  for (const e of readdirSync(join(root, dir))) {
    const p = join(dir, e)
    if (statSync(join(root, p)).isDirectory()) out.push(...sources(p))
    else if (p.endsWith('.ts')) out.push(p)
  }
  return out
}

/** The value imports of a file (relative ones), resolved to project paths. */
export function valueImports(file: string, text: string): string[] {
  const out: string[] = []
  for (const m of text.matchAll(/^import\s+(?!type\s)[^;'"]*?from\s+'(\.[^']+)'/gms)) {
    const spec = m[1] ?? ''
    out.push(relative(root, resolve(root, dirname(file), spec)).replace(/\.js$/, '.ts'))
  }
  return out
}

/** The unit of a source file: a root file of core/ is its own; otherwise its top folder under core/, or admin, or bin. */
export function unitOf(file: string): string {
  const parts = file.split('/')
  if (parts[0] !== 'core') return parts[0] ?? file
  return parts.length === 2 ? file : `core/${parts[1] ?? ''}`
}

/** The import table between the layering markers of a document: unit → the units it may import. */
export function parseTable(doc: string): Map<string, Set<string>> {
  const start = doc.indexOf('<!-- layering:start -->')
  const end = doc.indexOf('<!-- layering:end -->')
  const table = new Map<string, Set<string>>()
  if (start < 0 || end < start) return table
  for (const line of doc.slice(start, end).split('\n')) {
    const cells = line.split('|').map((c) => c.trim())
    const unit = /^`([^`]+)`$/.exec(cells[1] ?? '')?.[1]
    if (unit === undefined) continue
    table.set(unit, new Set([...(cells[2] ?? '').matchAll(/`([^`]+)`/g)].map((m) => m[1] ?? '')))
  }
  return table
}

/** The imports `table` does not allow, as "file -> target". */
export function forbidden(files: readonly [string, string][], table: ReadonlyMap<string, ReadonlySet<string>>): string[] {
  const broken: string[] = []
  for (const [file, text] of files) {
    const from = unitOf(file)
    for (const target of valueImports(file, text)) {
      const to = unitOf(target)
      if (to !== from && !table.get(from)?.has(to)) broken.push(`${file} -> ${target}`)
    }
  }
  return broken
}

const doc = readFileSync(join(root, 'docs', 'architecture.md'), 'utf8')
const table = parseTable(doc)
const files = [...sources('core'), ...sources('admin'), ...sources('bin')]

t.test('layering: every folder and root file of core/, admin/ and bin/ has a row in docs/architecture.md, and every row names one', async (t) => {
  t.ok(table.size > 20, 'the table was found')
  const units = new Set(files.map(unitOf))
  t.same([...units].filter((u) => !table.has(u)).sort(), [], 'no unit without a row')
  t.same([...table.keys()].filter((u) => !units.has(u)).sort(), [], 'no row without a unit')
  const named = new Set([...table.values()].flatMap((s) => [...s]))
  t.same([...named].filter((u) => !units.has(u)).sort(), [], 'every unit a row allows exists')
})

t.test('layering: every value import is one the table of docs/architecture.md allows', async (t) => {
  t.ok(files.length > 50, 'the sources were found')
  t.same(forbidden(files.map((f) => [f, readFileSync(join(root, f), 'utf8')]), table), [], 'no forbidden imports')
})

t.test('layering: the checker catches a forbidden import, and type imports are exempt', async (t) => {
  const text = "import { a } from '../core/tls/router.js'\nimport type { B } from '../core/state.js'\n"
  t.same(valueImports('admin/x.ts', text), ['core/tls/router.ts'], 'type imports are exempt')
  t.same(forbidden([['admin/x.ts', text]], table), ['admin/x.ts -> core/tls/router.ts'], 'admin may not import core/tls')
  t.same(forbidden([['core/net/x.ts', "import { b } from './y.js'\n"]], table), [], 'a folder imports itself')
  t.same(unitOf('core/errors.ts'), 'core/errors.ts')
  t.same(unitOf('core/tls/sni-index.ts'), 'core/tls')
  t.same(parseTable('<!-- layering:start -->\n| `a` | `b`, `c` |\n| `d` | |\n<!-- layering:end -->'), new Map([['a', new Set(['b', 'c'])], ['d', new Set()]]))
})

t.test('layering: the web UI (ui/src) imports only itself and preact, nothing of core/ or admin/', async (t) => {
  const broken: string[] = []
  const files = readdirSync(join(root, 'ui', 'src')).map((f) => join('ui', 'src', f))
  t.ok(files.length > 3, 'the UI sources were found')
  for (const file of files) {
    for (const m of readFileSync(join(root, file), 'utf8').matchAll(/^import\s[^;'"]*?from\s+'([^']+)'/gms)) {
      const spec = m[1] ?? ''
      const ok = spec === 'preact' || spec.startsWith('preact/') || (spec.startsWith('./') && !spec.includes('..'))
      if (!ok) broken.push(`${file} -> ${spec}`)
    }
  }
  t.same(broken, [], 'the UI speaks only the admin API')
})
