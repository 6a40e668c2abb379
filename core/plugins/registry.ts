import type { PluginDef } from './types.js'
import { proxyRewrite } from './proxy-rewrite.js'
import { sslEnforcement } from './ssl-enforcement.js'
import { mtlsAuth } from './mtls-auth.js'

/** The built-in plugins, highest priority first. There is no dynamic loading by name. */
export const plugins: readonly PluginDef[] = ([sslEnforcement, mtlsAuth, proxyRewrite] as unknown as PluginDef[]).sort(
  (a, b) => b.priority - a.priority,
)

const byName = new Map(plugins.map((p) => [p.name, p]))

/** The plugin called `name`, or undefined for an unknown plugin. */
export const pluginByName = (name: string): PluginDef | undefined => byName.get(name)

/** Startup check: names and priorities are unique; returns a message or undefined. */
export function checkRegistry(list: readonly PluginDef[] = plugins): string | undefined {
  const names = new Set<string>()
  const prios = new Set<number>()
  for (const p of list) {
    if (names.has(p.name)) return `duplicate plugin name ${p.name}`
    if (prios.has(p.priority)) return `duplicate plugin priority ${p.priority} (${p.name})`
    names.add(p.name)
    prios.add(p.priority)
  }
  return undefined
}
