import t from 'tap'
import { ambiguousPath } from '../../../core/net/ambiguous-path.js'
import { parseTarget } from '../../../core/pipeline/path.js'

// Each row: a path as sent, the server behaviour that reads it differently from the gateway, and
// the family the gateway names (undefined: every common server reads it as the gateway does).
const rows: [raw: string, behaviour: string, family: RegExp | undefined][] = [
  ['/public/x', 'a plain path', undefined],
  ['/%70ublic/x', 'an encoded letter', undefined],
  ['//public//x', 'repeated slashes (merged by nginx, Tomcat, IIS)', undefined],
  ['/public/a.b/c..d/...x', 'dots inside names', undefined],
  ['/public/x%20y', 'an encoded space inside a name', undefined],
  ['/public/..;/private', 'Tomcat, Jetty: ";params" stripped, then ".." resolved', /path parameters/],
  ['/public/.;jsessionid=1/x', 'Tomcat: ".;jsessionid" is "."', /path parameters/],
  ['/public/..%3B/private', 'Tomcat decodes %3B before stripping parameters', /path parameters/],
  ['/private;.css', 'Spring, JAX-RS: matrix parameters off any segment', /path parameters/],
  ['/public/..\\private', 'IIS, Windows: "\\" is "/"', /a backslash/],
  ['/public/..%5Cprivate', 'IIS decodes %5C, then "\\" is "/"', /a backslash/],
  ['/public/..%EF%BC%BCprivate', 'Windows best fit: U+FF3C is "\\"', /fullwidth/],
  ['/public/%EF%BC%8F..', 'Windows best fit: U+FF0F is "/"', /fullwidth/],
  ['/public/%EF%BC%8E%EF%BC%8E/x', 'Windows best fit: U+FF0E is "."', /fullwidth/],
  ['/public/a%2Fb', 'Apache, Tomcat, Jetty keep or refuse an encoded slash', /encoded slash/],
  ['/public/%252e%252e/private', 'IIS and proxy chains decode twice', /double percent-encoding/],
  ['/private/%2e%2e/public/x', 'Node http, Express route the raw path: encoded dots stay names', /dot segment/],
  ['/private/../public/x', 'Node http, Express do not resolve dot segments', /dot segment/],
  ['/public/./x', 'the same for "."', /dot segment/],
  ['/public/x/..', 'a dot segment at the end', /dot segment/],
  ['/public/..%20/private', 'Windows strips trailing spaces: ".. " is ".."', /dots and spaces/],
  ['/public/.../private', 'Windows strips trailing dots: "..." is ".."', /dots and spaces/],
  ['/public/.%20./x', 'dots and spaces mixed', /dots and spaces/],
]

t.test('ambiguous paths: table of families, each naming the server behaviour', async (t) => {
  for (const [raw, behaviour, family] of rows) {
    const target = parseTarget(raw)
    if (!target.ok) {
      t.fail(`${raw}: the gateway refuses it for everybody (${target.reason}), not a row of this table`)
      continue
    }
    const got = ambiguousPath(target.rawPath, target.path)
    if (family) t.match(got, family, `${raw} → ${String(family)}: ${behaviour}`)
    else t.equal(got, undefined, `${raw} → read alike: ${behaviour}`)
  }
})

t.test('ambiguous paths: forms the gateway refuses for everybody before (400 for all)', async (t) => {
  for (const raw of ['/public/%c0%ae%c0%ae/x', '/public/%u002e/x', '/public/%00/x', '/public/../../x']) {
    t.equal(parseTarget(raw).ok, false, `${raw} is refused by parseTarget`)
  }
})
