import { spawn, type ChildProcess } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Test } from 'tap'
import { Agent, request } from 'undici'
import { freePort } from './ports.js'
import { collect, stopProcess, tempDir } from './proc.js'
import { eventually } from './eventually.js'

/** PEM material for https members (written to files for etcd's flags). */
export interface EtcdTls {
  /** server certificate (SAN 127.0.0.1) and key, PEM */
  cert: string
  key: string
  /** CA that issued the server certificate and the client certificates, PEM */
  ca: string
  /**
   * client certificate (from `ca`) this helper uses for its own calls: etcd 3.4 given
   * --trusted-ca-file asks every client for a certificate from that CA
   */
  client: { cert: string; key: string }
}

export interface EtcdMember {
  readonly name: string
  /** client URL (http or https) */
  readonly url: string
  readonly pid: number
  readonly running: boolean
  /** SIGTERM, data kept; resolves with the exit code */
  stop(): Promise<number | string>
  /** SIGKILL (crash), data kept */
  kill(): Promise<number | string>
  /** starts it again on the same ports and data dir; resolves when its process is up (not when healthy) */
  start(): Promise<void>
  output(): string
}

export interface EtcdCluster {
  readonly members: readonly EtcdMember[]
  /** every member's client URL */
  readonly urls: readonly string[]
  /** the member every running member names as leader (waits until they agree, default 15 s) */
  leader(timeoutMs?: number): Promise<EtcdMember>
  /** waits until every running member reports the same leader */
  waitHealthy(timeoutMs?: number): Promise<void>
  /** the CA file etcd was given, and the helper's client certificate files (for a gateway's config) */
  readonly files: { ca?: string; clientCert?: string; clientKey?: string }
  output(): string
}

interface Status {
  member: string
  leader: string
}

/**
 * A real etcd cluster of `size` members (default 3) on free loopback ports, each in its own temp
 * dir, stopped at teardown. Members can be stopped, killed and restarted by pid; `leader()` asks
 * every running member's /v3/maintenance/status which member leads.
 */
export async function startEtcdCluster(t: Test, o: { size?: number; tls?: EtcdTls } = {}): Promise<EtcdCluster> {
  const size = o.size ?? 3
  const scheme = o.tls ? 'https' : 'http'
  const tlsDir = o.tls ? await tempDir(t, 'etcd-tls-') : ''
  const files: { ca?: string; cert?: string; key?: string; clientCert?: string; clientKey?: string } = {}
  if (o.tls) {
    files.ca = join(tlsDir, 'ca.pem')
    files.cert = join(tlsDir, 'server.pem')
    files.key = join(tlsDir, 'server-key.pem')
    await writeFile(files.ca, o.tls.ca)
    await writeFile(files.cert, o.tls.cert)
    await writeFile(files.key, o.tls.key, { mode: 0o600 })
    files.clientCert = join(tlsDir, 'client.pem')
    files.clientKey = join(tlsDir, 'client-key.pem')
    await writeFile(files.clientCert, o.tls.client.cert)
    await writeFile(files.clientKey, o.tls.client.key, { mode: 0o600 })
  }
  const agent = o.tls
    ? new Agent({ connect: { ca: o.tls.ca, checkServerIdentity: () => undefined, cert: o.tls.client.cert, key: o.tls.client.key } })
    : undefined
  t.teardown(() => agent?.close())

  const specs: { name: string; dir: string; url: string; peerUrl: string }[] = []
  for (let i = 0; i < size; i++) {
    const [client, peer] = [await freePort(), await freePort()]
    specs.push({ name: `m${i}`, dir: await tempDir(t, `etcd-m${i}-`), url: `${scheme}://127.0.0.1:${client}`, peerUrl: `http://127.0.0.1:${peer}` })
  }
  const initialCluster = specs.map((s) => `${s.name}=${s.peerUrl}`).join(',')
  const token = `tok-${process.pid}-${Date.now()}`

  const members: (EtcdMember & { proc(): ChildProcess | undefined })[] = specs.map((s) => {
    let proc: ChildProcess | undefined
    let out: () => string = () => ''
    const args = [
      '--name', s.name, '--data-dir', s.dir,
      '--listen-client-urls', s.url, '--advertise-client-urls', s.url,
      '--listen-peer-urls', s.peerUrl, '--initial-advertise-peer-urls', s.peerUrl,
      '--initial-cluster', initialCluster, '--initial-cluster-token', token, '--initial-cluster-state', 'new',
      '--log-level', 'warn',
      ...(o.tls ? ['--cert-file', files.cert ?? '', '--key-file', files.key ?? '', '--trusted-ca-file', files.ca ?? '', '--client-cert-auth'] : []),
    ]
    const m = {
      name: s.name,
      url: s.url,
      get pid() {
        return proc?.pid ?? 0
      },
      get running() {
        return proc !== undefined && proc.exitCode === null && proc.signalCode === null
      },
      stop: () => (proc ? stopProcess(proc) : Promise.resolve(0)),
      kill: async () => {
        if (!proc || !m.running) return proc?.exitCode ?? 0
        const p = proc
        const done = new Promise<number | string>((r) => p.once('exit', (c, sig) => r(c ?? sig ?? -1)))
        p.kill('SIGKILL')
        return done
      },
      start: async () => {
        if (m.running) return
        proc = spawn('etcd', args, { stdio: ['ignore', 'pipe', 'pipe'] })
        out = collect(proc)
        await new Promise<void>((resolve, reject) => {
          proc?.once('spawn', () => resolve())
          proc?.once('error', reject)
        })
      },
      output: () => `--- ${s.name} ---\n${out()}`,
      proc: () => proc,
    }
    return m
  })
  t.teardown(() => Promise.all(members.map((m) => m.stop())))

  const output = (): string => members.map((m) => m.output()).join('\n')

  const status = async (m: EtcdMember): Promise<Status> => {
    const res = await request(`${m.url}/v3/maintenance/status`, {
      method: 'POST',
      body: '{}',
      headers: { 'content-type': 'application/json' },
      headersTimeout: 2000,
      bodyTimeout: 2000,
      ...(agent ? { dispatcher: agent } : {}),
    })
    const j = (await res.body.json()) as { header?: { member_id?: string }; leader?: string }
    if (res.statusCode !== 200 || !j.header?.member_id) throw new Error(`status ${res.statusCode}`)
    return { member: j.header.member_id, leader: j.leader ?? '0' }
  }

  const agreedLeader = async (): Promise<EtcdMember> => {
    const running = members.filter((m) => m.running)
    const all = await Promise.all(running.map(async (m) => ({ m, s: await status(m) })))
    const leaders = new Set(all.map((x) => x.s.leader))
    const id = [...leaders][0]
    if (leaders.size !== 1 || !id || id === '0') throw new Error(`members disagree on the leader: ${[...leaders].join(',')}`)
    const found = all.find((x) => x.s.member === id)
    if (!found) throw new Error(`leader ${id} is not a running member`)
    return found.m
  }

  const leader = (timeoutMs = 15_000): Promise<EtcdMember> =>
    eventually(agreedLeader, () => true, { timeoutMs, intervalMs: 50, describe: output })

  await Promise.all(members.map((m) => m.start()))
  if (size === 1) {
    // a lone member leads itself; /health does not go through etcd's own gRPC gateway, which
    // cannot verify a server certificate made for another name
    const m = members[0]
    await eventually(async () => {
      const r = await request(`${m?.url}/health`, { headersTimeout: 2000, ...(agent ? { dispatcher: agent } : {}) })
      const j = (await r.body.json()) as { health?: string }
      return j.health
    }, (h) => h === 'true', { timeoutMs: 30_000, intervalMs: 50, describe: output })
  } else {
    await leader(30_000)
  }
  return {
    members,
    urls: members.map((m) => m.url),
    leader,
    waitHealthy: async (timeoutMs = 15_000) => {
      await leader(timeoutMs)
    },
    files: {
      ...(files.ca ? { ca: files.ca } : {}),
      ...(files.clientCert ? { clientCert: files.clientCert } : {}),
      ...(files.clientKey ? { clientKey: files.clientKey } : {}),
    },
    output,
  }
}
