import type { ErrorObject } from 'ajv'

/** Turns Ajv's first error into one message that names the field (`a.b[0].c`). */
export function describe(errors: readonly ErrorObject[]): string {
  const e = errors[0]
  if (!e) return 'unknown validation error'
  const path = pathOf(e.instancePath)
  const where = path ? `property "${path}" ` : ''
  switch (e.keyword) {
    case 'additionalProperties': {
      const extra = String(e.params['additionalProperty'])
      return `additional properties forbidden, found ${path ? `${path}.${extra}` : extra}`
    }
    case 'required':
      return `property "${path ? `${path}.` : ''}${String(e.params['missingProperty'])}" is required`
    case 'enum':
      return `${where}validation failed: must be one of ${JSON.stringify(e.params['allowedValues'])}`
    default:
      return `${where}validation failed: ${e.message ?? e.keyword}`.trim()
  }
}

/** JSON pointer (`/a/b/0/c`) → `a.b[0].c`. */
export function pathOf(pointer: string): string {
  let out = ''
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    if (/^\d+$/.test(seg)) out += `[${seg}]`
    else out += out ? `.${seg}` : seg
  }
  return out
}
