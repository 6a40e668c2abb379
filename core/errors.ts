/**
 * The one table of error codes the gateway can emit (DESIGN.md §2.1).
 * Every code is `GW_<AREA>_<WHAT>`, appears in README.md's error table, and its message is a
 * typed function so a wrong argument is a compile error.
 */
const table = {
  GW_CONF_READ: { status: 500, msg: (file: string, why: string) => `${file}: cannot read: ${why}` },
  GW_CONF_YAML: { status: 500, msg: (file: string, why: string) => `${file}: not valid YAML: ${why}` },
  GW_CONF_INVALID: { status: 500, msg: (file: string, path: string, why: string) => `${file}: ${path}: ${why}` },
  GW_CONF_UNSAFE_ADMIN_KEY: {
    status: 500,
    msg: (file: string, ip: string) =>
      `${file}: deployment.admin.admin_listen.ip is ${ip} (not loopback) while deployment.admin.admin_key still holds the example key; set your own key (e.g. \`openssl rand -hex 16\`) before exposing the admin API`,
  },
  GW_ETCD_UNREACHABLE: { status: 503, msg: (url: string, secs: number, why: string) => `etcd at ${url} unreachable after ${secs}s: ${why}` },
  GW_ETCD_FAILED: { status: 503, msg: (why: string) => `etcd request failed: ${why}` },
  GW_ETCD_CONFIG: { status: 500, msg: (key: string, why: string) => `${key}: ${why}` },
  GW_PORT_IN_USE: { status: 500, msg: (what: string, addr: string) => `${what} port ${addr} is already in use` },
  GW_LISTEN_FAILED: { status: 500, msg: (what: string, addr: string, why: string) => `${what} cannot listen on ${addr}: ${why}` },
  GW_CLI_USAGE: { status: 500, msg: (why: string) => why },
  GW_ADMIN_NOT_FOUND: { status: 404, msg: () => 'Key not found' },
  GW_ADMIN_BAD_REQUEST: { status: 400, msg: (why: string) => why },
  GW_ADMIN_UNAUTHORIZED: { status: 401, msg: () => 'failed to check token' },
  GW_ADMIN_FORBIDDEN: { status: 403, msg: (why: string) => why },
  GW_ADMIN_UNKNOWN_RESOURCE: { status: 404, msg: (name: string) => `Unsupported resource type: ${name}` },
  GW_ADMIN_METHOD: { status: 405, msg: (method: string, what: string) => `method ${method} is not allowed on ${what}` },
  GW_ADMIN_TOO_LARGE: { status: 413, msg: (limit: number) => `request body is larger than ${limit} bytes` },
  GW_ADMIN_CONFLICT: { status: 409, msg: (key: string) => `${key} was changed by another writer too many times; retry` },
  GW_ACCESS_LOG_OPEN: { status: 500, msg: (file: string, why: string) => `apisix.access_log.path ${file}: cannot open: ${why}` },
} as const

/** Every code the project can emit. */
export type Code = keyof typeof table
type Args<C extends Code> = Parameters<(typeof table)[C]['msg']>

/** An error with a stable code and the status an HTTP edge answers with. */
export class GatewayError<C extends Code = Code> extends Error {
  override readonly name = 'GatewayError'
  readonly status: number
  constructor(
    readonly code: C,
    args: Args<C>,
    options?: ErrorOptions,
  ) {
    super((table[code].msg as (...a: Args<C>) => string)(...args), options)
    this.status = table[code].status
  }
}

/** All codes, for the test that keeps README.md's table honest. */
export const allCodes = (): readonly Code[] => Object.keys(table) as Code[]

/** True when `err` is a GatewayError (of `code`, when given). */
export const isGatewayError = (err: unknown, code?: Code): err is GatewayError =>
  err instanceof GatewayError && (code === undefined || err.code === code)
