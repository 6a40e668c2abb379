import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { allCodes, answerOf, errorAnswer, GatewayError, isGatewayError, type Code } from '../../core/errors.js'

t.test('errors: every code is GW_<AREA>_<WHAT> and listed in README.md\'s error table', async (t) => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
  const listed = new Set([...readme.matchAll(/^\| `(GW_[A-Z_]+)` \|/gm)].map((m) => m[1]))
  for (const code of allCodes()) {
    t.match(code, /^GW_[A-Z]+_[A-Z_]+$/)
    t.ok(listed.has(code), `${code} is in README.md`)
  }
  for (const code of listed) t.ok((allCodes() as readonly string[]).includes(code ?? ''), `README.md's ${code} exists in core/errors.ts`)
})

t.test('errors: a GatewayError carries its code, status and typed message', async (t) => {
  const e = new GatewayError('GW_PORT_IN_USE', ['admin', '127.0.0.1:9180'])
  t.equal(e.code, 'GW_PORT_IN_USE')
  t.equal(e.message, 'admin port 127.0.0.1:9180 is already in use')
  t.equal(isGatewayError(e, 'GW_PORT_IN_USE'), true)
  t.equal(isGatewayError(new Error('x')), false)
  t.equal(new GatewayError('GW_ADMIN_NOT_FOUND', []).status, 404)
})

const root = new URL('../../', import.meta.url)
/** The project's TypeScript sources under `dir`, as [path, text]. */
function sources(dir: string): [string, string][] {
  const out: [string, string][] = []
  for (const e of readdirSync(new URL(dir, root), { withFileTypes: true })) {
    const p = `${dir}/${e.name}`
    if (e.isDirectory()) out.push(...sources(p))
    else if (p.endsWith('.ts')) out.push([p, readFileSync(new URL(p, root), 'utf8')])
  }
  return out
}

/** The codes of the table no source raises (a code is raised where its quoted name appears). */
export const unraised = (files: readonly [string, string][]): Code[] => allCodes().filter((c) => !files.some(([p, text]) => p !== 'core/errors.ts' && text.includes(`'${c}'`)))
/** Places that write an error body of their own (the admin's bodies come from core/errors.ts). */
export const inlineBodies = (files: readonly [string, string][]): string[] =>
  files.flatMap(([p, text]) => [...text.matchAll(/\berror_msg\b|\bdescription:\s*'|message:\s*'Key not found'/g)].map((m) => `${p}: ${m[0]}`))

t.test('errors: every code of the table is raised somewhere, and no admin error body is written outside it', async (t) => {
  const all = [...sources('core'), ...sources('admin'), ...sources('bin')]
  t.ok(all.length > 50, 'the sources were found')
  t.same(unraised(all), [], 'no code that nothing raises')
  t.same(inlineBodies(sources('admin')), [], 'the admin builds no error body itself')
  t.same(unraised([['x.ts', "new GatewayError('GW_CLI_USAGE', [])"]]).includes('GW_CLI_USAGE'), false, 'the check sees a raised code')
  t.ok(unraised([['core/errors.ts', "'GW_CLI_USAGE'"]]).includes('GW_CLI_USAGE'), 'and one named only in the table is not raised')
  t.same(inlineBodies([['admin/x.ts', "send(reply, 400, { error_msg: 'no' })"]]), ['admin/x.ts: error_msg'], 'and it sees an inline body')
})

t.test('errors: the admin bodies keep APISIX\'s shapes', async (t) => {
  t.same(errorAnswer('GW_ADMIN_NOT_FOUND'), { status: 404, body: { message: 'Key not found' } })
  t.same(errorAnswer('GW_ADMIN_NO_KEY'), { status: 401, body: { error_msg: 'failed to check token', description: 'missing apikey' } })
  t.same(answerOf(new GatewayError('GW_ADMIN_BAD_REQUEST', ['missing configurations'])), { status: 400, body: { error_msg: 'missing configurations' } })
})
