import t from 'tap'
import { buildCidrSet, checkCidr, parseAddress } from '../../../core/net/cidr.js'

t.test('cidr sets: table of addresses against ranges', async (t) => {
  const cases: [string[], string, boolean][] = [
    [['127.0.0.0/24'], '127.0.0.1', true],
    [['127.0.0.0/24'], '127.0.1.1', false],
    [['127.0.0.0/24'], '::ffff:127.0.0.5', true],
    [['10.0.0.0/8', '192.168.1.1'], '192.168.1.1', true],
    [['10.0.0.0/8', '192.168.1.1'], '192.168.1.2', false],
    [['::1'], '::1', true],
    [['::1/128'], '127.0.0.1', false],
    [['fe80::/10'], 'fe80::1:2', true],
    [['fe80::/10'], 'fec0::1', false],
    [['0.0.0.0/0'], '8.8.8.8', true],
    [['::/0'], '2001:db8::1', true],
    [['::/0'], '1.2.3.4', false],
    [['2001:db8::/32'], '2001:db8:ffff::1', true],
    [[], '127.0.0.1', false],
  ]
  for (const [ranges, addr, want] of cases) t.equal(buildCidrSet(ranges).has(addr), want, `${ranges.join(',')} has ${addr} → ${want}`)
})

t.test('cidr: invalid entries → a message naming the entry', async (t) => {
  for (const bad of ['127.0.0.0/33', '300.1.1.1', 'abc', '::1/129', '1.2.3.4/x', ''])
    t.match(checkCidr(bad), /is not an IP address or CIDR/, bad)
  t.equal(checkCidr('127.0.0.1/32'), undefined)
  t.equal(parseAddress('::ffff:1.2.3.4')?.kind(), 'ipv4')
})

t.test('cidr: a regexp flag of the shebang is active in tests', async (t) => {
  t.throws(() => new RegExp('(a)\\1', 'l' as string))
})
