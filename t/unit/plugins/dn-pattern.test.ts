import t from 'tap'
import { checkDnPattern, compileDnPatterns, MAX_DN_PATTERN } from '../../../core/plugins/dn-pattern.js'
import { buildClientCertFacts } from '../../../core/x509/cert.js'
import { issue, makeCa } from '../../lib/certs.js'

const DUKE = 'CN=Duke,OU=JavaSoft,O=Sun Microsystems,C=US'

t.test('dn patterns: table of pattern, certificate DN → allowed or not', async (t) => {
  const cases: [string, string, boolean][] = [
    // exact names, order
    [DUKE, DUKE, true],
    ['C=US, O=Sun Microsystems, OU=JavaSoft, CN=Duke', DUKE, true],
    ['C=US, O=Sun Microsystems, CN=Duke, OU=JavaSoft', DUKE, false],
    ['CN=localhost,O=GraviteeSource,C=FR', 'C=FR,O=GraviteeSource,CN=localhost', true],
    ['CN=localhost,O=GraviteeSource,C=FR', 'CN=localhost,C=FR,O=GraviteeSource', false],
    // Gravitee's own pattern cases
    ['CN=Duke,OU=JavaSoft,O=*,C=US', DUKE, true],
    ['CN=Duke, OU=JavaSoft, O=*, C=??', DUKE, true],
    ['C=??, O=*, OU=JavaSoft, CN=Duke', DUKE, true],
    ['CN=Duke,OU=JavaSoft,O=Sun Microsystems,C=US', 'CN=Unknown', false],
    // * and **
    ['CN=*.acme.com,O=Acme,C=??', 'CN=api.acme.com,O=Acme,C=US', true],
    ['CN=*.acme.com,O=Acme,C=??', 'CN=api.acme.com,O=Acme,C=USA', false],
    ['CN=*.acme.com', 'CN=acme.com', false],
    ['CN=*.acme.com', 'CN=.acme.com', true],
    ['CN=*.acme.com', 'CN=a.b.acme.com', true],
    ['CN=**.acme.com', 'CN=a.b.acme.com', true],
    ['CN=*', 'CN=a/b.c', true],
    ['CN=*', 'CN=', true],
    ['CN=*', 'CN=.', true],
    ['CN=*', 'CN=..', true],
    ['CN=a*', 'CN=a', true],
    ['CN=a*c', 'CN=a/b/c', true],
    ['CN=a**c', 'CN=a/b/c', true],
    ['CN=a***c', 'CN=a.b/c', true],
    ['CN=a*c', 'CN=a/b/d', false],
    ['CN=*/*', 'CN=a/b', true],
    ['CN=*/*', 'CN=ab', false],
    ['CN=*a*a*', 'CN=banana', true],
    // ?
    ['CN=a?c', 'CN=abc', true],
    ['CN=a?c', 'CN=a/c', true],
    ['CN=a?c', 'CN=a.c', true],
    ['CN=a?c', 'CN=ac', false],
    ['CN=a?c', 'CN=abbc', false],
    ['CN=??', 'CN=a', false],
    ['CN=LU?I?', 'CN=Lu\\C4\\8Di\\C4\\87', true],
    // spaces and case
    ['CN = Local  Host , O=x', 'CN=local host,O=X', true],
    ['CN=local host', 'CN=  LOCAL     HOST  ', true],
    ['CN=localhost', 'CN=local host', false],
    ['CN=local*', 'CN=LOCAL HOST', true],
    ['CN=a *', 'CN=a  b', true],
    ['CN=a *', 'CN=ab', false],
    ['cn=a,o=b', 'CN=a,O=b', true],
    ['Cn=A,O=B', 'cn=a,o=b', true],
    ['EMAILADDRESS=x@y.com,CN=a', 'emailAddress=x@y.com,CN=a', true],
    ['E=x@y.com,CN=a', 'emailAddress=X@Y.COM,CN=a', true],
    ['S=Paris', 'ST=paris', true],
    ['2.5.4.3=a', 'CN=a', true],
    ['OID.2.5.4.3=a', 'CN=a', true],
    ['CN=a', 'CN=#0c0161', true],
    ['1.2.3.4=x*', '1.2.3.4=xy', true],
    // attribute counts and types
    ['CN=a,O=b', 'CN=a,O=b,C=FR', false],
    ['CN=a,O=b,C=FR', 'CN=a,O=b', false],
    ['CN=*', 'CN=a,O=b', false],
    ['CN=*', 'O=a', false],
    ['CN=*', '', false],
    // escaped commas and quoting
    ['O=Acme\\, Inc.,C=US', 'O=Acme\\, Inc.,C=US', true],
    ['O=Acme\\, Inc.,C=US', 'O="Acme, Inc.",C=US', true],
    ['O=Acme*,C=US', 'O=Acme\\, Inc.,C=US', true],
    ['O=Acme\\, Inc.,C=US', 'O=Acme,OU=Inc.,C=US', false],
    // multi-valued RDNs
    ['CN=a+UID=b,O=c', 'UID=b+CN=a,O=c', true],
    ['CN=a+UID=*,O=c', 'CN=a+UID=zz,O=c', true],
    ['CN=a+UID=b,O=c', 'CN=a,UID=b,O=c', false],
    ['CN=a,O=c', 'CN=a+UID=b,O=c', false],
    // every character but ? and * is literal
    ['CN=a.b', 'CN=axb', false],
    ['CN=(a|b)', 'CN=a', false],
    ['CN=(a|b)', 'CN=(a|b)', true],
    ['CN=[ab]', 'CN=a', false],
    ['CN=[ab]', 'CN=[ab]', true],
    ['CN={a\\,b}', 'CN=a', false],
    ['CN={a\\,b}', 'CN={a\\,b}', true],
    ['CN=!a', 'CN=b', false],
    ['CN=@(a)', 'CN=a', false],
    ['CN=\\+(a)', 'CN=a', false],
    ['CN=a{1\\,3}', 'CN=aaa', false],
    ['CN=$^.*', 'CN=$^.x', true],
    ['CN=a\\\\b', 'CN=a\\\\b', true],
    ['CN=a\\\\*', 'CN=a\\\\b', true],
    ['CN=a/b', 'CN=a/b', true],
    ['CN=a/b', 'CN=a\\EE\\80\\80b', false],
    ['CN=*', 'CN=a\\EE\\80\\80b', false],
    ['CN=\\*', 'CN=x', false],
    ['CN=\\*', 'CN=\\*', true],
    ['CN=\\2A', 'CN=x', false],
    ['CN=\\3F', 'CN=?', true],
    ['CN=\\3F', 'CN=x', false],
    ['CN="*"', 'CN=x', true],
    // a malformed certificate DN never matches
    ['CN=*', 'CN=a,', false],
    ['CN=*', 'CN="a', false],
  ]
  for (const [pattern, dn, want] of cases)
    t.equal(compileDnPatterns([pattern]).matches(dn), want, `${JSON.stringify(pattern)} vs ${JSON.stringify(dn)} → ${want}`)
})

t.test('dn patterns: a certificate is allowed when any entry of the list matches', async (t) => {
  const m = compileDnPatterns(['CN=x', 'CN=y,O=*'])
  t.equal(m.matches('CN=y,O=z'), true)
  t.equal(m.matches('CN=x'), true)
  t.equal(m.matches('CN=z'), false)
})

t.test('dn patterns: an empty list or only invalid entries allows nobody', async (t) => {
  t.equal(compileDnPatterns([]).matches('CN=a'), false)
  t.equal(compileDnPatterns(['XX=a', 'CN=a,']).matches('CN=a'), false)
  t.equal(compileDnPatterns(['XX=a', 'CN=a']).matches('CN=a'), true, 'the valid entry still works')
})

t.test('dn patterns: a backtracking-heavy pattern against a long value answers quickly', async (t) => {
  const m = compileDnPatterns(['CN=*a*a*a*a*a*a*a*a*b'])
  const start = performance.now()
  t.equal(m.matches(`CN=${'a'.repeat(4000)}`), false)
  t.equal(m.matches(`CN=${'a'.repeat(50)}b`), true)
  t.ok(performance.now() - start < 2000, 'under 2 s')
})

t.test('dn patterns: the admin check names what is wrong', async (t) => {
  const cases: [string, RegExp | undefined][] = [
    ['CN=*.acme.com,O=Acme,C=??', undefined],
    ['C=US, O=Sun Microsystems, OU=JavaSoft, CN=Duke', undefined],
    ['E=x@y,1.2.3.4=z', undefined],
    ['', /empty/],
    ['   ', /empty/],
    ['CN=a,XX=b', /not a valid X\.500 name: at character 6: unknown attribute type XX/],
    ['CN=a,', /expected an attribute type after the separator/],
    ['CN', /expected "=" after CN/],
    ['/C=FR/O=x/CN=y', /not a valid X\.500 name/],
    [`CN=${'a'.repeat(MAX_DN_PATTERN)}`, /longer than 4096 characters/],
  ]
  for (const [p, want] of cases) {
    const got = checkDnPattern(p)
    if (want === undefined) t.equal(got, undefined, `${JSON.stringify(p)} → accepted`)
    else t.match(got, want, `${JSON.stringify(p).slice(0, 40)} → ${want}`)
  }
})

t.test('dn patterns: subjects as $ssl_client_s_dn prints them (escapes, UTF-8, email) match operator patterns', async (t) => {
  const leaf = issue(makeCa('Pattern CA'), {
    subject: [
      { shortName: 'C', value: 'FR' },
      { shortName: 'O', value: 'Acme, Inc.' },
      { shortName: 'OU', value: 'a+b' },
      { shortName: 'CN', value: 'Lučić / #1 ', valueTagClass: 12 } as never,
      { name: 'emailAddress', value: 'x@y.com' },
    ],
  })
  const dn = buildClientCertFacts(leaf.der)?.subjectDn ?? ''
  t.match(dn, /^emailAddress=x@y\.com,CN=Lu\\C4\\8D/, 'nginx-style DN, most specific first')
  const cases: [string, boolean][] = [
    ['emailAddress=X@Y.COM,CN=lučić / \\#1,OU=a\\+b,O=Acme\\, Inc.,C=FR', true],
    ['C=FR, O=Acme\\, Inc., OU=*, CN=Lu?i? /*, E=*@y.com', true],
    ['C=FR, O="Acme, Inc.", OU=a\\+b, CN=*, EMAILADDRESS=*', true],
    ['C=FR, O=Acme\\, Inc., OU=*, CN=*', false],
    ['C=FR, O=Acme*, OU=a, CN=*, E=*', false],
  ]
  for (const [p, want] of cases) t.equal(compileDnPatterns([p]).matches(dn), want, `${p} → ${want}`)
})
