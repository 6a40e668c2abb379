/** The gateway's version, read once from package.json (for apisix_node_info). */
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * The `version` of the nearest package.json above this module (core/ from source, dist/core/
 * when built); '0.0.0' when none is found. Synchronous: call it at start-up only.
 */
export function packageVersion(from: string = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const file = join(dir, 'package.json')
    if (existsSync(file)) {
      const v = (JSON.parse(readFileSync(file, 'utf8')) as { version?: unknown }).version
      return typeof v === 'string' ? v : '0.0.0'
    }
    if (dirname(dir) === dir) return '0.0.0'
  }
}
