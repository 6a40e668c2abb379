import t from 'tap'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

// DESIGN.md §1 "Import rules": data flows one way; `import type` is exempt.
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

const FORBIDDEN: [RegExp, RegExp][] = [
  [/^core\/(errors\.ts|net\/)/, /^(?!core\/(errors\.ts|net\/))/],
  [/^core\/x509\//, /^(?!core\/(errors\.ts|net\/|x509\/))/],
  [/^core\/(schema|resources)\//, /^(?!core\/(errors\.ts|net\/|x509\/|schema\/|resources\/|plugins\/(types|registry)\.ts|etcd\/keys\.ts))/],
  [/^core\/(tls|router|plugins|proxy)\//, /^core\/(config|etcd|server|state\.ts)/],
  [/^core\/pipeline\//, /^(core\/(config|etcd)\/|admin\/)/],
  [/^admin\//, /^core\/(tls|router|proxy|pipeline|server|config\/watcher\.ts|state\.ts)/],
  // explain runs the data plane's decisions for the admin: no I/O of its own
  [/^core\/explain\//, /^core\/(etcd\/(?!keys\.ts)|server\/|config\/(watcher|store)\.ts)/],
  [/^core\//, /^(admin|bin)\//],
]

/** The value imports of a file (relative ones), resolved to project paths. */
export function valueImports(file: string, text: string): string[] {
  const out: string[] = []
  for (const m of text.matchAll(/^import\s+(?!type\s)[^;'"]*?from\s+'(\.[^']+)'/gms)) {
    const spec = m[1] ?? ''
    out.push(relative(root, resolve(root, dirname(file), spec)).replace(/\.js$/, '.ts'))
  }
  return out
}

t.test('layering: every value import follows the one-way data flow of DESIGN.md', async (t) => {
  const broken: string[] = []
  const files = [...sources('core'), ...sources('admin')]
  t.ok(files.length > 20, 'the sources were found')
  for (const file of files) {
    for (const target of valueImports(file, readFileSync(join(root, file), 'utf8'))) {
      for (const [who, what] of FORBIDDEN) if (who.test(file) && what.test(target)) broken.push(`${file} -> ${target}`)
    }
  }
  t.same(broken, [], 'no forbidden imports')
})

t.test('layering: the checker catches a forbidden import', async (t) => {
  const imports = valueImports('admin/x.ts', "import { a } from '../core/tls/router.js'\nimport type { B } from '../core/state.js'\n")
  t.same(imports, ['core/tls/router.ts'], 'type imports are exempt')
  const hit = FORBIDDEN.some(([who, what]) => who.test('admin/x.ts') && what.test('core/tls/router.ts'))
  t.equal(hit, true)
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
