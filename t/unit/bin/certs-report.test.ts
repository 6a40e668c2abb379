import t from 'tap'
import { buildReport, formatJson, formatTable, parseWithin, reportExitCode } from '../../../bin/certs-report.js'
import type { CertRecord } from '../../../core/x509/records.js'

const NOW = new Date('2026-12-02T00:00:00Z')
const DAY = 86_400_000
const rec = (kind: CertRecord['kind'], id: string, names: string[], subject: string, daysFromNow: number): CertRecord => ({
  kind,
  id,
  names,
  subject,
  notAfter: new Date(NOW.getTime() + daysFromNow * DAY),
})

const records: CertRecord[] = [
  rec('server', '1', ['a.test', '*.b.test'], 'CN=a.test,O=Acme', 400),
  rec('client-ca', '1', [], 'CN=Acme Root CA,O=Acme\\, Inc', 3650),
  rec('consumer', 'alice', [], 'CN=alice', 3),
  rec('server', 'old', ['old.test'], 'CN=old.test', -2.5),
  rec('server', '2', ['c.test'], 'CN=c.test', 29.5),
]

t.test('certs report: rows sorted soonest first, with days left rounded down', async (t) => {
  const rows = buildReport(records, NOW)
  t.same(
    rows.map((r) => [r.id, r.kind, r.days_left]),
    [
      ['old', 'server', -3],
      ['alice', 'consumer', 3],
      ['2', 'server', 29],
      ['1', 'server', 400],
      ['1', 'client-ca', 3650],
    ],
  )
  t.equal(rows[1]?.not_after, '2026-12-05T00:00:00Z')
})

t.test('certs report: --expiring-within keeps certificates expiring within the window, and expired ones', async (t) => {
  const cases: [number | undefined, string[]][] = [
    [undefined, ['old', 'alice', '2', '1', '1']],
    [0, ['old']],
    [3 * DAY, ['old', 'alice']],
    [30 * DAY, ['old', 'alice', '2']],
    [12 * 3_600_000, ['old']],
  ]
  for (const [within, ids] of cases) t.same(buildReport(records, NOW, within).map((r) => r.id), ids, `within ${within} ms`)
})

t.test('certs report: equal not-after → ordered by kind (server, client-ca, consumer), then id, then subject', async (t) => {
  const same = [rec('consumer', 'a', [], 'CN=a', 5), rec('server', 'z', ['z'], 'CN=z2', 5), rec('client-ca', 'b', [], 'CN=b', 5), rec('server', 'z', ['z'], 'CN=z1', 5), rec('server', 'y', ['y'], 'CN=y', 5)]
  t.same(
    buildReport(same, NOW).map((r) => `${r.kind}/${r.id}/${r.subject}`),
    ['server/y/CN=y', 'server/z/CN=z1', 'server/z/CN=z2', 'client-ca/b/CN=b', 'consumer/a/CN=a'],
  )
})

t.test('certs report: a certificate expiring this very second → not expired, 0 days left; one second later → expired', async (t) => {
  const edge = [{ kind: 'server' as const, id: 'e', names: ['e.test'], subject: 'CN=e', notAfter: NOW }]
  t.equal(buildReport(edge, NOW)[0]?.days_left, 0)
  t.equal(reportExitCode(buildReport(edge, NOW)), 0)
  t.equal(reportExitCode(buildReport(edge, new Date(NOW.getTime() + 1000))), 1)
})

t.test('certs report: table → header, aligned columns, "-" for no names, no trailing spaces', async (t) => {
  const text = formatTable(buildReport(records.slice(0, 3), NOW))
  t.equal(
    text,
    [
      'NOT_AFTER             DAYS_LEFT  KIND       ID     NAMES            SUBJECT',
      '2026-12-05T00:00:00Z  3          consumer   alice  -                CN=alice',
      '2028-01-06T00:00:00Z  400        server     1      a.test,*.b.test  CN=a.test,O=Acme',
      '2036-11-29T00:00:00Z  3650       client-ca  1      -                CN=Acme Root CA,O=Acme\\, Inc',
      '',
    ].join('\n'),
  )
})

t.test('certs report: no certificates → the header line alone', async (t) => {
  t.equal(formatTable([]), 'NOT_AFTER  DAYS_LEFT  KIND  ID  NAMES  SUBJECT\n')
  t.equal(formatJson([]), '[]\n')
})

t.test('certs report: --json → an array of objects with the column names in lower case', async (t) => {
  const parsed = JSON.parse(formatJson(buildReport(records.slice(0, 1), NOW))) as unknown[]
  t.same(parsed, [{ not_after: '2028-01-06T00:00:00Z', days_left: 400, kind: 'server', id: '1', names: ['a.test', '*.b.test'], subject: 'CN=a.test,O=Acme' }])
})

t.test('certs report: exit code → 1 when any listed certificate has expired, else 0', async (t) => {
  t.equal(reportExitCode(buildReport(records, NOW)), 1)
  t.equal(reportExitCode(buildReport(records.slice(0, 3), NOW)), 0)
  t.equal(reportExitCode([]), 0)
})

t.test('parseWithin: durations in days and hours → ms; anything else → a message naming the flag', async (t) => {
  const good: [string, number][] = [
    ['30d', 30 * DAY],
    ['12h', 12 * 3_600_000],
    ['0d', 0],
    ['1h', 3_600_000],
  ]
  for (const [text, ms] of good) t.same(parseWithin(text), { ok: true, value: ms }, text)
  for (const bad of ['', '30', 'd', '30m', '-1d', '1.5d', '30D', ' 30d', '30d ', '1234567d', '30dd']) {
    const r = parseWithin(bad)
    t.equal(r.ok, false, JSON.stringify(bad))
    if (!r.ok) t.match(r.error, /^--expiring-within: .* is not a duration like 30d or 12h$/)
  }
})
