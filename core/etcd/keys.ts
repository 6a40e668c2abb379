/** The resources stored in etcd, in APISIX's key layout `{prefix}/{resource}/{id}`. */
export const RESOURCES = ['ssls', 'routes', 'upstreams', 'consumers', 'global_rules'] as const
export type ResourceName = (typeof RESOURCES)[number]

export const isResourceName = (s: string): s is ResourceName => (RESOURCES as readonly string[]).includes(s)

/** `{prefix}/{res}/{id}` */
export const keyOf = (prefix: string, res: ResourceName, id: string): string => `${trimSlash(prefix)}/${res}/${id}`

/** `{prefix}/{res}/` (the directory every object of `res` lives under). */
export const dirOf = (prefix: string, res: ResourceName): string => `${trimSlash(prefix)}/${res}/`

/** Splits a full etcd key into resource and id, or undefined when it is not an object key. */
export function parseKey(prefix: string, key: string): { res: ResourceName; id: string } | undefined {
  const p = `${trimSlash(prefix)}/`
  if (!key.startsWith(p)) return undefined
  const rest = key.slice(p.length)
  const slash = rest.indexOf('/')
  if (slash <= 0) return undefined
  const res = rest.slice(0, slash)
  const id = rest.slice(slash + 1)
  if (!isResourceName(res) || id === '' || id.includes('/')) return undefined
  return { res, id }
}

const trimSlash = (p: string): string => (p.endsWith('/') ? p.slice(0, -1) : p)
