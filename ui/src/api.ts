/** The admin API, spoken with the key kept in sessionStorage and sent as X-API-KEY (never in a URL). */

const STORE = 'apisix-admin-key'

export const savedKey = (): string | null => sessionStorage.getItem(STORE)
export const saveKey = (key: string): void => sessionStorage.setItem(STORE, key)
export const forgetKey = (): void => sessionStorage.removeItem(STORE)

/** An answer other than 2xx: its status and the admin's `error_msg`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
  }
}

/** Calls `/apisix/admin/{path}`; resolves with the JSON body, rejects with ApiError. */
export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { 'x-api-key': savedKey() ?? '' }
  if (body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(`/apisix/admin/${path}`, {
    method,
    headers,
    cache: 'no-store',
    credentials: 'omit',
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  })
  const text = await res.text()
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    json = undefined
  }
  if (!res.ok) {
    const o = json as { error_msg?: unknown; message?: unknown; description?: unknown } | undefined
    const msg = [o?.error_msg ?? o?.message, o?.description].filter((x) => typeof x === 'string').join(': ')
    throw new ApiError(res.status, msg || `${res.status} ${res.statusText}`)
  }
  return json as T
}

/**
 * The form field an admin 400 names, among `fields` (dotted paths such as `client.depth`): the
 * longest one the message mentions (`property "client.depth"`, `client.ca: …`, `failed to parse
 * cert`), else undefined (shown above the form).
 */
export function fieldOf(message: string, fields: readonly string[]): string | undefined {
  const quoted = /property "([^"]+)"/.exec(message)?.[1]?.replace(/\[\d+\]$/, '')
  const byLength = [...fields].sort((a, b) => b.length - a.length)
  if (quoted) {
    const hit = byLength.find((f) => quoted === f || quoted.startsWith(`${f}.`) || quoted.startsWith(`${f}[`))
    if (hit) return hit
  }
  const words = message.toLowerCase()
  return byLength.find((f) => new RegExp(`(^|[^a-z_.])${f.replace(/\./g, '\\.')}([^a-z_]|$)`).test(words))
}

/** Reads a file the user picked as text. */
export const readText = (f: File): Promise<string> => f.text()
