import { GatewayError } from '../core/errors.js'

/** `bin/apisix certs`: the expiry report (issue 8). Returns the exit code. */
export async function certs(o: { file: string; within: string | undefined; json: boolean }): Promise<number> {
  void o
  throw new GatewayError('GW_CLI_USAGE', ['certs: not available in this build yet'])
}
