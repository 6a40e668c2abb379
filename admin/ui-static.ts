/**
 * The web UI's files (built by ui/build.mjs into dist/ui/), read once at start and served from
 * memory: a handful of files, so no static-file plugin is needed. Every answer carries the
 * headers that keep the UI's own page safe: a CSP allowing only the gateway's own scripts and
 * styles (no inline script), no framing, no MIME sniffing, no referrer.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { extname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** One file of the UI. */
export interface UiFile {
  readonly body: Buffer
  readonly type: string
  readonly etag: string
}

/** Where the built UI is, relative to this module once compiled (dist/admin → dist/ui). */
export const UI_DIR = fileURLToPath(new URL('../ui/', import.meta.url))

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
}

/** The headers of every UI answer. */
export const UI_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
}

/** Reads the built UI; an empty map when it was not built (the UI then answers 503 saying so). */
export function loadUiFiles(dir: string = UI_DIR): ReadonlyMap<string, UiFile> {
  const files = new Map<string, UiFile>()
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch {
    return files
  }
  for (const name of names) {
    const type = TYPES[extname(name)]
    if (!type) continue
    const body = readFileSync(join(dir, name))
    files.set(name, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` })
  }
  return files
}
