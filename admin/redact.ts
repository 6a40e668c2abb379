import { isPlainPem } from '../core/resources/key-crypto.js'
import { isObject } from './patch.js'

type Obj = Record<string, unknown>

function dropPlain(o: Obj, field: string): void {
  const v = o[field]
  if (typeof v === 'string' && isPlainPem(v)) delete o[field]
  else if (Array.isArray(v) && v.some((x) => typeof x === 'string' && isPlainPem(x))) delete o[field]
}

function tlsOf(o: Obj): Obj | undefined {
  const tls = o['tls']
  return isObject(tls) ? tls : undefined
}

function eachUpstream(res: string, v: Obj, fn: (u: Obj) => void): void {
  if (res === 'upstreams') fn(v)
  else if (res === 'routes' && isObject(v['upstream'])) {
    const u = { ...v['upstream'] }
    v['upstream'] = u
    fn(u)
  }
}

/**
 * A stored object as GET answers it: an ssl object's `key` and `keys` are removed, as are
 * upstream `tls.client_key`s (APISIX's GET removes the former; we never return any key).
 */
export function redactForRead(res: string, value: unknown): unknown {
  if (!isObject(value)) return value
  const v: Obj = { ...value }
  if (res === 'ssls') {
    delete v['key']
    delete v['keys']
  }
  eachUpstream(res, v, (u) => {
    const tls = tlsOf(u)
    if (tls) {
      const t = { ...tls }
      delete t['client_key']
      u['tls'] = t
    }
  })
  return v
}

/**
 * A stored object as PUT/POST/PATCH answer it: like APISIX, encrypted keys are echoed, but a
 * key stored in plain text (empty keyring) is left out (CONTRACT.md: never in plain text).
 */
export function redactForWrite(res: string, value: unknown): unknown {
  if (!isObject(value)) return value
  const v: Obj = { ...value }
  if (res === 'ssls') {
    dropPlain(v, 'key')
    dropPlain(v, 'keys')
  }
  eachUpstream(res, v, (u) => {
    const tls = tlsOf(u)
    if (tls) {
      const t = { ...tls }
      dropPlain(t, 'client_key')
      u['tls'] = t
    }
  })
  return v
}
