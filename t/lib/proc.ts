import type { ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'

/** A temp dir removed at teardown (never tap's t.testdir(), DESIGN.md §2.10). */
export async function tempDir(t: Test, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `gw-${prefix}`))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** Collects a child's output (bounded) so failures can show its tail. */
export function collect(proc: ChildProcess, limit = 200_000): () => string {
  let out = ''
  const add = (b: Buffer): void => {
    out += b.toString()
    if (out.length > limit) out = out.slice(out.length - limit)
  }
  proc.stdout?.on('data', add)
  proc.stderr?.on('data', add)
  return () => out.slice(-6000)
}

/** Stops a child by its pid: SIGTERM, then SIGKILL after `graceMs`; resolves with its exit code (or signal name). */
export function stopProcess(proc: ChildProcess, graceMs = 10_000): Promise<number | string> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve(proc.exitCode ?? proc.signalCode ?? -1)
    const kill = setTimeout(() => proc.kill('SIGKILL'), graceMs)
    proc.once('exit', (code, signal) => {
      clearTimeout(kill)
      resolve(code ?? signal ?? -1)
    })
    proc.kill('SIGTERM')
  })
}

/** Resolves with the exit code when the child exits (or its signal name). */
export const exited = (proc: ChildProcess): Promise<number | string> =>
  new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve(proc.exitCode ?? proc.signalCode ?? -1)
    proc.once('exit', (code, signal) => resolve(code ?? signal ?? -1))
  })
