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
  // the admin API's answers (APISIX's bodies: `error_msg`, with `description` for a refused key;
  // 'Key not found' under `message`); built by errorAnswer below and nowhere else
  GW_ADMIN_NOT_FOUND: { status: 404, msg: () => 'Key not found', field: 'message' },
  GW_ADMIN_NO_ROUTE: { status: 404, msg: (method: string, path: string) => `no admin API at ${method} ${path}` },
  GW_ADMIN_BAD_REQUEST: { status: 400, msg: (why: string) => why },
  GW_ADMIN_NO_KEY: { status: 401, msg: () => 'failed to check token', description: 'missing apikey' },
  GW_ADMIN_WRONG_KEY: { status: 401, msg: () => 'failed to check token', description: 'wrong apikey' },
  GW_ADMIN_READ_ONLY: { status: 403, msg: () => 'failed to check token', description: 'invalid method for role viewer' },
  GW_ADMIN_FORBIDDEN: { status: 403, msg: (addr: string) => `client address ${addr} is not allowed by deployment.admin.allow_admin` },
  GW_ADMIN_UNKNOWN_RESOURCE: { status: 404, msg: (name: string) => `Unsupported resource type: ${name}` },
  GW_ADMIN_METHOD: { status: 405, msg: (method: string, what: string) => `method ${method} is not allowed on ${what}` },
  GW_ADMIN_CONSUMER_METHOD: { status: 405, msg: (method: string) => `not supported \`${method}\` method for consumer` },
  GW_ADMIN_TOO_LARGE: {
    status: 413,
    msg: (limit: number) =>
      `request body is larger than ${limit} bytes (${limit / 2 ** 20} MiB, the admin API's limit); an ssl object with a bigger client.crl is written to etcd directly, with etcd's --max-request-bytes raised: see README.md, "Revoking a client certificate"`,
  },
  GW_ADMIN_CONFLICT: { status: 409, msg: (key: string) => `${key} was changed by another writer too many times; retry` },
  GW_ADMIN_INTERNAL: { status: 500, msg: () => 'internal error' },
  GW_ADMIN_UI_NOT_BUILT: { status: 503, msg: () => 'the web UI is not built: run bin/setup.sh' },
  GW_ADMIN_UI_NO_FILE: { status: 404, msg: (name: string) => `no file ${name} in the web UI` },
  GW_ADMIN_NO_METRICS: { status: 503, msg: () => 'no data-plane worker answered the metrics request' },
  GW_ACCESS_LOG_OPEN: { status: 500, msg: (file: string, why: string) => `apisix.access_log.path ${file}: cannot open: ${why}` },
} as const satisfies Record<string, Entry>

/** One row: the HTTP status, the message, and how an HTTP edge's JSON body carries it. */
interface Entry {
  readonly status: number
  readonly msg: (...args: never[]) => string
  /** the body's field for the message (default `error_msg`) */
  readonly field?: 'message'
  /** a fixed `description` next to it */
  readonly description?: string
}

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

/** An HTTP answer of an error: its status and JSON body. */
export interface ErrorAnswer {
  readonly status: number
  readonly body: Readonly<Record<string, string>>
}

/** The answer to `err` (the one place an error body is built). */
export function answerOf(err: GatewayError): ErrorAnswer {
  const row: Entry = table[err.code]
  const body: Record<string, string> = { [row.field ?? 'error_msg']: err.message }
  if (row.description !== undefined) body['description'] = row.description
  return { status: err.status, body }
}

/** The answer to a new GatewayError of `code`. */
export const errorAnswer = <C extends Code>(code: C, ...args: Args<C>): ErrorAnswer => answerOf(new GatewayError(code, args))

/** All codes, for the test that keeps README.md's table honest. */
export const allCodes = (): readonly Code[] => Object.keys(table) as Code[]

/** True when `err` is a GatewayError (of `code`, when given). */
export const isGatewayError = (err: unknown, code?: Code): err is GatewayError =>
  err instanceof GatewayError && (code === undefined || err.code === code)
