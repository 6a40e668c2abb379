import t from 'tap'
import { compileChain, runChains, type Chain } from '../../../core/plugins/chain.js'
import type { PluginDef, RequestContext, Step } from '../../../core/plugins/types.js'
import { Type } from 'typebox'

const log: string[] = []
const def = (name: string, priority: number, o: { rewrite?: Step | 'async'; access?: Step } = {}): PluginDef =>
  ({
    name,
    version: '0',
    priority,
    schema: Type.Object({}),
    compile: (conf: unknown) => ({ conf }),
    rewrite: () => {
      log.push(`${name}:rewrite`)
      return o.rewrite === 'async' ? Promise.resolve(undefined) : o.rewrite
    },
    access: () => {
      log.push(`${name}:access`)
      return o.access
    },
  }) as unknown as PluginDef

const ctx = {} as RequestContext

t.test('chain: higher priority first, _meta.priority overrides, _meta.disable and unknown plugins left out', async (t) => {
  const defs = new Map([def('low', 10), def('high', 100), def('mid', 50), def('off', 60)].map((d) => [d.name, d]))
  const chain = compileChain({ low: {}, high: {}, mid: { _meta: { priority: 200 } }, off: { _meta: { disable: true } }, nope: {} }, (n) => defs.get(n))
  t.same(chain.map((l) => l.def.name), ['mid', 'high', 'low'])
  t.same(chain[0]!.compiled, { conf: {} }, '_meta is not passed to compile')
})

t.test('chain: global chains before the route, rewrite then access per chain; the first reply ends it', async (t) => {
  const run = (chains: Chain[]): Step | Promise<Step> => {
    log.length = 0
    return runChains(chains, ctx)
  }
  const g = compileChain({ g: {} }, () => def('g', 5))
  const a = def('a', 20)
  const b = def('b', 10, { access: { status: 403 } })
  const route = compileChain({ a: {}, b: {} }, (n) => (n === 'a' ? a : b))
  t.same(run([g, route]), { status: 403 })
  t.same(log, ['g:rewrite', 'g:access', 'a:rewrite', 'b:rewrite', 'a:access', 'b:access'])
  const stop = compileChain({ s: {} }, () => def('s', 1, { rewrite: { status: 401 } }))
  t.same(run([stop, route]), { status: 401 })
  t.same(log, ['s:rewrite'], 'nothing runs after a reply')
})

t.test('chain: an async phase resumes where it stopped', async (t) => {
  const p1 = def('p1', 20, { rewrite: 'async' })
  const p2 = def('p2', 10, { access: { status: 418 } })
  const chain = compileChain({ p1: {}, p2: {} }, (n) => (n === 'p1' ? p1 : p2))
  log.length = 0
  const r = runChains([chain], ctx)
  t.ok(r instanceof Promise)
  t.same(await r, { status: 418 })
  t.same(log, ['p1:rewrite', 'p2:rewrite', 'p1:access', 'p2:access'])
})
