import type { AdminClient } from './admin.js'
import { eventually } from './eventually.js'
import { httpGet, type HttpReply } from './tls-client.js'

/**
 * PUTs a route through the admin API and waits until the gateway serves it: `probe` (a path on
 * the plain port, with optional headers) answers something other than the 404 of no route.
 */
export async function putRoute(
  admin: AdminClient,
  port: number,
  id: string,
  body: Record<string, unknown>,
  probe: { path: string; headers?: Record<string, string>; method?: string },
): Promise<HttpReply> {
  const r = await admin.put(`routes/${id}`, body)
  if (r.status !== 200 && r.status !== 201) throw new Error(`PUT routes/${id}: ${r.status} ${r.text}`)
  return eventually(
    () => httpGet(port, probe.path, { ...(probe.headers ? { headers: probe.headers } : {}), ...(probe.method ? { method: probe.method } : {}) }),
    (x) => !(x.status === 404 && x.text.includes('Route Not Found')),
    { timeoutMs: 10_000 },
  )
}
