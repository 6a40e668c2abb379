import t from 'tap'
import { readFileSync } from 'node:fs'
import { allCodes, GatewayError, isGatewayError } from '../../core/errors.js'

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
