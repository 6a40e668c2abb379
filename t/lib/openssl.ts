import { execFile, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Issued } from './certs.js'

/** What `openssl s_client` printed, and how it ended. */
export interface SClientResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
  /** both streams */
  readonly all: string
}

/**
 * Runs `openssl s_client` against 127.0.0.1:port with extra arguments, sends `input` (then EOF,
 * `-ign_eof` keeps reading the answer) and resolves when it exits (killed after timeoutMs).
 */
export function sClient(port: number, args: readonly string[], input = '', timeoutMs = 5000): Promise<SClientResult> {
  return new Promise((resolve) => {
    const p = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, ...(input ? ['-ign_eof'] : []), ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs)
    p.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr, all: `${stdout}\n${stderr}` })
    })
    p.stdin.end(input)
  })
}

/** Files for PEM strings in a temp dir (removed by cleanup()). */
export function pemFiles(pems: Record<string, string>): { path(name: string): string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'pem-'))
  for (const [name, pem] of Object.entries(pems)) writeFileSync(join(dir, name), pem)
  return { path: (name) => join(dir, name), cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

const run = (args: string[], cwd: string): Promise<void> =>
  new Promise((resolve, reject) => execFile('openssl', args, { cwd }, (err, _o, stderr) => (err ? reject(new Error(`openssl ${args[0]}: ${stderr}`)) : resolve())))

/** An ECDSA P-256 certificate for `names` issued by `ca` (node-forge cannot make EC certificates). */
export async function issueEcdsa(ca: Pick<Issued, 'cert' | 'key'>, names: readonly string[]): Promise<{ cert: string; key: string; serialHex: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'ec-'))
  try {
    writeFileSync(join(dir, 'ca.pem'), ca.cert)
    writeFileSync(join(dir, 'ca.key'), ca.key)
    writeFileSync(join(dir, 'ext.cnf'), `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}\nextendedKeyUsage=serverAuth,clientAuth\n`)
    await run(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ec.key'], dir)
    await run(['pkcs8', '-topk8', '-nocrypt', '-in', 'ec.key', '-out', 'ec8.key'], dir)
    await run(['req', '-new', '-key', 'ec8.key', '-subj', `/CN=${names[0] ?? 'ec'}`, '-out', 'ec.csr'], dir)
    await run(['x509', '-req', '-in', 'ec.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '30', '-sha256', '-extfile', 'ext.cnf', '-out', 'ec.pem'], dir)
    const cert = readFileSync(join(dir, 'ec.pem'), 'utf8')
    const { X509Certificate } = await import('node:crypto')
    return { cert, key: readFileSync(join(dir, 'ec8.key'), 'utf8'), serialHex: new X509Certificate(cert).serialNumber.toUpperCase() }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
