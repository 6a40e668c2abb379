import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
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

/**
 * Spawns a Node program without tap's process-info hooks: tap re-adds its NODE_OPTIONS to every
 * child's environment (its --import breaks bin/apisix), so `env -u` removes it right before exec.
 * The pid is the program's own (env execs it).
 */
export function spawnNode(cmd: string, args: readonly string[], o: SpawnOptions = {}): ChildProcess {
  return spawn('/usr/bin/env', ['-u', 'NODE_OPTIONS', cmd, ...args], { ...o, env: childEnv(o.env as Record<string, string> | undefined) })
}

/** The environment for a spawned gateway: without tap's NODE_OPTIONS (its process-info hooks break bin/apisix). */
export function childEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra }
  delete env['NODE_OPTIONS']
  for (const k of Object.keys(env)) if (k.startsWith('TAP') || k.startsWith('_TAPJS')) delete env[k]
  return env
}
