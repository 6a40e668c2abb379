/**
 * Plugin chains: a route's (or global rule's) `plugins` compiled once per generation into the
 * order they run in, and the runner of the rewrite and access phases (DESIGN.md §2.6).
 */
import type { PluginDef, RequestContext, Step } from './types.js'

/** One plugin of a chain with its compiled conf. */
export interface Link {
  readonly def: PluginDef
  readonly compiled: unknown
}

/** A compiled chain: plugins in the order they run (higher priority first). */
export type Chain = readonly Link[]

/** The empty chain. */
export const EMPTY_CHAIN: Chain = Object.freeze([])

/**
 * Compiles a `plugins` object into a chain: unknown plugins and ones with `_meta.disable: true`
 * are left out; `_meta.priority` overrides the plugin's priority (APISIX's plugin_injected_schema).
 * Throws when a plugin's compile throws (the caller refuses the route).
 */
export function compileChain(
  plugins: Readonly<Record<string, Readonly<Record<string, unknown>>>> | undefined,
  lookup: (name: string) => PluginDef | undefined,
): Chain {
  if (!plugins) return EMPTY_CHAIN
  const out: { link: Link; priority: number }[] = []
  for (const [name, conf] of Object.entries(plugins)) {
    const def = lookup(name)
    if (!def) continue
    const { _meta: meta, ...rest } = conf as Record<string, unknown>
    const m = (meta ?? {}) as { disable?: unknown; priority?: unknown }
    if (m.disable === true) continue
    const priority = typeof m.priority === 'number' ? m.priority : def.priority
    out.push({ link: { def, compiled: def.compile(rest) }, priority })
  }
  out.sort((a, b) => b.priority - a.priority)
  return Object.freeze(out.map((o) => o.link))
}

/** The phases a chain runs before the proxy. */
export type Phase = 'rewrite' | 'access'

const isPromise = (s: Step | Promise<Step>): s is Promise<Step> => typeof (s as Promise<Step> | undefined)?.then === 'function'

/**
 * Runs chains in APISIX's order: for each chain in turn (global rules first, then the route),
 * its rewrite phase then its access phase; the first Reply ends the request. Stays synchronous
 * until a plugin returns a promise.
 */
export function runChains(chains: readonly Chain[], ctx: RequestContext): Step | Promise<Step> {
  return runFrom(chains, ctx, 0, 'rewrite', 0, undefined)
}

/** What a traced run reports for each phase function it ran (the admin's explain). */
export type StepObserver = (name: string, phase: Phase, step: Step) => void

/** runChains, reporting every phase function run and its outcome to `seen`, in order. */
export async function runChainsTraced(chains: readonly Chain[], ctx: RequestContext, seen: StepObserver): Promise<Step> {
  return runFrom(chains, ctx, 0, 'rewrite', 0, seen)
}

function runFrom(chains: readonly Chain[], ctx: RequestContext, ci: number, phase: Phase, li: number, seen: StepObserver | undefined): Step | Promise<Step> {
  for (; ci < chains.length; ci++, phase = 'rewrite', li = 0) {
    const chain = chains[ci]!
    for (;;) {
      for (; li < chain.length; li++) {
        const { def, compiled } = chain[li]!
        const fn = def[phase]
        if (!fn) continue
        const step = fn.call(def, compiled, ctx)
        if (step === undefined) {
          seen?.(def.name, phase, undefined)
          continue
        }
        if (isPromise(step)) {
          const next = { ci, phase, li: li + 1 }
          return step.then((s) => {
            seen?.(def.name, next.phase, s)
            return s ?? runFrom(chains, ctx, next.ci, next.phase, next.li, seen)
          })
        }
        seen?.(def.name, phase, step)
        return step
      }
      if (phase === 'access') break
      phase = 'access'
      li = 0
    }
  }
  return undefined
}
