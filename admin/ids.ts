/**
 * Ids and admin URLs. POST ids follow APISIX: the etcd revision of a write to `{prefix}/gen_id`,
 * as a 20-digit zero-padded decimal (apisix/core/id.lua via core/etcd.lua).
 */

/** An etcd revision → APISIX's generated id. */
export const formatGenId = (revision: string): string => revision.padStart(20, '0')

/** The parts of `/apisix/admin/{resource}[/{id}[/{sub/path}]]`; undefined for other paths. */
export interface AdminPath {
  readonly resource: string
  readonly id: string | undefined
  readonly sub: readonly string[]
}

const BASE = '/apisix/admin'

/** Splits an admin URL (query removed, segments percent-decoded); `resource` is '' at the root. */
export function parseAdminPath(url: string): AdminPath | undefined {
  const q = url.indexOf('?')
  const path = q < 0 ? url : url.slice(0, q)
  if (path !== BASE && !path.startsWith(`${BASE}/`)) return undefined
  const segs = path.slice(BASE.length).split('/').slice(1)
  const decoded: string[] = []
  for (const s of segs) {
    try {
      decoded.push(decodeURIComponent(s))
    } catch {
      return undefined
    }
  }
  // a trailing slash names no further segment
  while (decoded.length > 0 && decoded[decoded.length - 1] === '') decoded.pop()
  const [resource = '', id, ...sub] = decoded
  return { resource, id: id === '' ? undefined : id, sub }
}
