import type { Gateway } from './gateway.js'
import { KEY } from './gateway.js'
import { parseJson } from './tls-client.js'

export interface AdminReply {
  readonly status: number
  readonly headers: Headers
  readonly text: string
  /** the parsed JSON body (undefined when it is not JSON) */
  readonly json: any // eslint-disable-line @typescript-eslint/no-explicit-any
}

export interface AdminClient {
  put(path: string, body: unknown, o?: RequestOpts): Promise<AdminReply>
  post(path: string, body: unknown, o?: RequestOpts): Promise<AdminReply>
  patch(path: string, body: unknown, o?: RequestOpts): Promise<AdminReply>
  get(path: string, o?: RequestOpts): Promise<AdminReply>
  delete(path: string, o?: RequestOpts): Promise<AdminReply>
  /** any method, raw body (string or Buffer sent as is) */
  raw(method: string, path: string, body?: string | Buffer, o?: RequestOpts): Promise<AdminReply>
}

export interface RequestOpts {
  key?: string | null
  headers?: Record<string, string>
}

/** An admin API client that sends the test key; paths are relative to /apisix/admin/. */
export function adminOf(gw: Pick<Gateway, 'admin'>): AdminClient {
  const base = `http://127.0.0.1:${gw.admin}/apisix/admin/`
  const raw = async (method: string, path: string, body?: string | Buffer, o: RequestOpts = {}): Promise<AdminReply> => {
    const headers: Record<string, string> = { ...o.headers }
    const key = o.key === undefined ? KEY : o.key
    if (key !== null) headers['x-api-key'] = key
    if (body !== undefined && !headers['content-type']) headers['content-type'] = 'application/json'
    const res = await fetch(base + path.replace(/^\//, ''), { method, headers, ...(body !== undefined ? { body } : {}) })
    const text = await res.text()
    return { status: res.status, headers: res.headers, text, json: parseJson(text) }
  }
  const send = (method: string) => (path: string, body: unknown, o?: RequestOpts) => raw(method, path, JSON.stringify(body), o)
  return {
    put: send('PUT'),
    post: send('POST'),
    patch: send('PATCH'),
    get: (path, o) => raw('GET', path, undefined, o),
    delete: (path, o) => raw('DELETE', path, undefined, o),
    raw,
  }
}
