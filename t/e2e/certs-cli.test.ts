import t from 'tap'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Etcd3 } from 'etcd3'
import { startEtcd } from '../lib/etcd.js'
import { BIN_APISIX, writeGatewayConfig } from '../lib/gateway.js'
import { issue, makeCa } from '../lib/certs.js'
import { freePort } from '../lib/ports.js'
import { spawnNode, tempDir } from '../lib/proc.js'

const DAY = 86_400_000

/** Runs bin/apisix to completion; returns exit code and output. */
function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawnNode(BIN_APISIX, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    p.stdout?.on('data', (b: Buffer) => (stdout += b))
    p.stderr?.on('data', (b: Buffer) => (stderr += b))
    const kill = setTimeout(() => p.kill('SIGKILL'), 60_000)
    p.on('exit', (code) => {
      clearTimeout(kill)
      resolve({ code, stdout, stderr })
    })
  })
}

const isoSeconds = (ms: number): string => `${new Date(ms).toISOString().slice(0, 19)}Z`
const notAfterMs = (c: { x509: { validTo: string } }): number => Date.parse(c.x509.validTo)

t.test('bin/apisix certs against a real etcd', async (t) => {
  const etcd = await startEtcd(t)
  const client = new Etcd3({ hosts: etcd.url })
  t.teardown(() => client.close())
  const conf = await writeGatewayConfig(t, { etcd: etcd.url })

  const ca = makeCa('Ops Root CA', { notAfter: new Date(Date.now() + 400 * DAY) })
  const soon = issue(ca, { cn: 'soon.test', sans: ['soon.test'], notAfter: new Date(Date.now() + 3 * DAY) })
  const later = issue(ca, { cn: 'later.test', sans: ['later.test', '*.later.test'], notAfter: new Date(Date.now() + 200 * DAY) })
  const alice = issue(ca, { subject: [{ shortName: 'CN', value: 'alice' }, { shortName: 'O', value: 'Test Org' }], notAfter: new Date(Date.now() + 30 * DAY) })
  await client.put('/apisix/ssls/later').value(JSON.stringify({ id: 'later', cert: later.cert, key: later.key, snis: ['later.test', '*.later.test'], client: { ca: ca.cert } })).exec()
  await client.put('/apisix/ssls/soon').value(JSON.stringify({ id: 'soon', cert: soon.cert, key: soon.key, sni: 'soon.test' })).exec()
  await client.put('/apisix/consumers/alice').value(JSON.stringify({ username: 'alice', plugins: { 'mtls-auth': { certificates: [alice.cert] } } })).exec()

  t.test('table → header, then every certificate soonest first with its columns; exit 0', async (t) => {
    const r = await run(['certs', '-c', conf.file])
    t.equal(r.code, 0, r.stderr)
    t.equal(r.stderr, '')
    const lines = r.stdout.trimEnd().split('\n').map((l) => l.split(/ {2,}/))
    t.same(lines[0], ['NOT_AFTER', 'DAYS_LEFT', 'KIND', 'ID', 'NAMES', 'SUBJECT'])
    t.same(lines.slice(1), [
      [isoSeconds(notAfterMs(soon)), '2', 'server', 'soon', 'soon.test', 'CN=soon.test'],
      [isoSeconds(notAfterMs(alice)), '29', 'consumer', 'alice', '-', 'O=Test Org,CN=alice'],
      [isoSeconds(notAfterMs(later)), '199', 'server', 'later', 'later.test,*.later.test', 'CN=later.test'],
      [isoSeconds(notAfterMs(ca)), '399', 'client-ca', 'later', '-', 'CN=Ops Root CA'],
    ])
  })

  t.test('--json → an array of the same rows and fields', async (t) => {
    const r = await run(['certs', '-c', conf.file, '--json'])
    t.equal(r.code, 0, r.stderr)
    const rows = JSON.parse(r.stdout) as Record<string, unknown>[]
    t.equal(rows.length, 4)
    t.same(rows[0], { not_after: isoSeconds(notAfterMs(soon)), days_left: 2, kind: 'server', id: 'soon', names: ['soon.test'], subject: 'CN=soon.test' })
    t.same(rows.map((x) => x['kind']), ['server', 'consumer', 'server', 'client-ca'])
  })

  t.test('--expiring-within keeps those that expire within that time', async (t) => {
    const cases: [string, string[]][] = [
      ['7d', ['soon']],
      ['31d', ['soon', 'alice']],
      ['96h', ['soon']],
    ]
    // independent runs: side by side
    const runs = await Promise.all(cases.map(([within]) => run(['certs', '-c', conf.file, '--json', '--expiring-within', within])))
    for (const [i, [within, ids]] of cases.entries()) {
      const r = runs[i]!
      t.equal(r.code, 0, `${within}: exit 0`)
      t.same((JSON.parse(r.stdout) as { id: string }[]).map((x) => x.id), ids, `${within} → ${ids.join(',') || 'none'}`)
    }
  })

  t.test('an expired certificate → listed first with negative DAYS_LEFT, exit 1', async (t) => {
    const old = issue(ca, { cn: 'old.test', sans: ['old.test'], notBefore: new Date(Date.now() - 30 * DAY), notAfter: new Date(Date.now() - 2 * DAY) })
    await client.put('/apisix/ssls/old').value(JSON.stringify({ id: 'old', cert: old.cert, key: old.key, sni: 'old.test' })).exec()
    t.teardown(() => client.delete().key('/apisix/ssls/old').exec())
    const r = await run(['certs', '-c', conf.file])
    t.equal(r.code, 1)
    const first = r.stdout.split('\n')[1]?.split(/ {2,}/)
    t.same(first, [isoSeconds(notAfterMs(old)), '-3', 'server', 'old', 'old.test', 'CN=old.test'])
    const within = await run(['certs', '-c', conf.file, '--expiring-within', '1h', '--json'])
    t.equal(within.code, 1, 'an expired certificate is always within')
    t.same((JSON.parse(within.stdout) as { id: string }[]).map((x) => x.id), ['old'])
  })

  t.test('a value that is not a certificate → a warning on stderr, the rest listed', async (t) => {
    await client.put('/apisix/ssls/ref').value(JSON.stringify({ id: 'ref', cert: '$secret://vault/1/cert', key: '$secret://vault/1/key', sni: 'ref.test' })).exec()
    t.teardown(() => client.delete().key('/apisix/ssls/ref').exec())
    const r = await run(['certs', '-c', conf.file, '--json'])
    t.equal(r.code, 0)
    t.equal((JSON.parse(r.stdout) as unknown[]).length, 4)
    t.match(r.stderr, /^warning: ssls\/ref \(server\): certificate not read: no PEM certificate\n$/)
  })

  t.test('bad flags → one line on stderr, exit 2', async (t) => {
    const cases: [string[], RegExp][] = [
      [['--expiring-within', '3w'], /--expiring-within: "3w" is not a duration like 30d or 12h/],
      [['--bogus'], /bogus/],
    ]
    const runs = await Promise.all(cases.map(([args]) => run(['certs', '-c', conf.file, ...args])))
    for (const [i, [args, want]] of cases.entries()) {
      const r = runs[i]!
      t.equal(r.code, 2, `${args.join(' ')}: exit 2`)
      t.match(r.stderr, want)
      t.equal(r.stderr.trim().split('\n').length, 1, 'one line')
      t.equal(r.stdout, '', 'nothing on stdout')
    }
  })
})

t.test('bin/apisix certs when config or etcd fails → one line, exit 2', async (t) => {
  const dir = await tempDir(t, 'certs-')
  const dead = await freePort()
  const c = await writeGatewayConfig(t, { etcd: `http://127.0.0.1:${dead}` })
  const started = Date.now()
  const r = await run(['certs', '-c', c.file])
  t.equal(r.code, 2)
  t.match(r.stderr.trim(), new RegExp(`^etcd at http://127\\.0\\.0\\.1:${dead} unreachable after \\d+s`))
  t.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
  t.ok(Date.now() - started < 15_000, 'gives up after a short retry, not startup_retry')

  const bad = join(dir, 'bad.yaml')
  await writeFile(bad, 'deployment:\n  etcd:\n    bogus: 1\n')
  const [b, missing] = await Promise.all([run(['certs', '-c', bad]), run(['certs', '-c', join(dir, 'nope.yaml')])])
  t.equal(b.code, 2)
  t.match(b.stderr.trim(), /deployment\.etcd\.bogus: unknown key$/)
  t.equal(missing.code, 2)
  t.match(missing.stderr, /nope\.yaml: cannot read/)
})
