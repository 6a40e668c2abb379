import { parseArgs } from 'node:util'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { GatewayError } from '../core/errors.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

/** The gateway's version, from package.json. */
export const version = (): string => (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version

/** `bin/apisix version`'s line: the gateway's name and version, and the runtime it runs on (CONTRACT.md). */
export const versionLine = (): string => `apisix-tls-gateway ${version()} (Node.js ${process.version}, OpenSSL ${process.versions.openssl})`

const HELP = `Usage: bin/apisix <command> [options]

Commands:
  start [-c FILE]                     run the gateway in the foreground (default config: conf/config.yaml)
  certs [-c FILE] [--expiring-within N{d,h}] [--json]
                                      list server certificates, client CAs and consumer certificates, soonest expiry first
  version                             print the version and the Node.js and OpenSSL it runs on
  help                                print this help
`

/** Runs one command line; sets the exit code (or exits) with a one-line reason on failure. */
export async function main(argv: readonly string[]): Promise<void> {
  const [command, ...rest] = argv
  try {
    switch (command) {
      case 'start': {
        const { values } = parseArgs({ args: [...rest], options: { config: { type: 'string', short: 'c' } }, strict: true })
        const { start } = await import('./start.js')
        await start(values.config ?? 'conf/config.yaml')
        return
      }
      case 'certs': {
        const { values } = parseArgs({
          args: [...rest],
          options: { config: { type: 'string', short: 'c' }, 'expiring-within': { type: 'string' }, json: { type: 'boolean' } },
          strict: true,
        })
        const { certs } = await import('./certs.js')
        process.exitCode = await certs({ file: values.config ?? 'conf/config.yaml', within: values['expiring-within'], json: values.json === true })
        return
      }
      case 'version':
      case '--version':
      case '-v':
        process.stdout.write(`${versionLine()}\n`)
        return
      case 'help':
      case '--help':
      case '-h':
      case undefined:
        process.stdout.write(HELP)
        return
      default:
        throw new GatewayError('GW_CLI_USAGE', [`unknown command ${JSON.stringify(command)}; run \`bin/apisix help\``])
    }
  } catch (err) {
    process.stderr.write(`${oneLine(err)}\n`)
    process.exit(command === 'certs' ? 2 : 1)
  }
}

/** An error as one line: a GatewayError's message, a parseArgs error's message, or the error's text. */
export function oneLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err)
  return msg.split('\n')[0] ?? msg
}
