import { RESOURCES, dirOf } from '../core/etcd/keys.js'
import { errorAnswer } from '../core/errors.js'
import { decodeExplainRequest } from '../core/explain/request.js'
import { explain } from '../core/explain/explain.js'
import { explainGeneration, type ListedKv } from '../core/explain/view.js'
import type { Answer, CrudDeps } from './crud.js'

/**
 * `POST /apisix/admin/explain` (CONTRACT.md): lists every resource from etcd (the admin's cached
 * listings), derives a generation the data plane's way and explains the request against it.
 */
export async function handleExplain(d: CrudDeps & { readonly fallbackSni: string }, body: unknown): Promise<Answer> {
  const req = decodeExplainRequest(body)
  if (!req.ok) return errorAnswer('GW_ADMIN_BAD_REQUEST', req.error)
  const listed: ListedKv[] = []
  for (const lists of await Promise.all(RESOURCES.map((r) => d.store.list(dirOf(d.prefix, r))))) listed.push(...lists)
  const gen = explainGeneration(d.prefix, listed, d.keyring)
  return { status: 200, body: await explain({ gen, fallbackSni: d.fallbackSni, nowMs: d.now() }, req.value) }
}
