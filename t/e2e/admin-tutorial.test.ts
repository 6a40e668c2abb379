import t from 'tap'
import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { promisify } from 'node:util'
import { startEtcd } from '../lib/etcd.js'
import { startGateway } from '../lib/gateway.js'
import { adminOf } from '../lib/admin.js'
import { tempDir } from '../lib/proc.js'
import { startEcho } from '../lib/echo.js'
import { eventually } from '../lib/eventually.js'

const run = promisify(execFile)

// APISIX docs, tutorials/client-to-apisix-mtls.md: the certificate commands, verbatim
const OPENSSL = `
openssl genrsa -out ca.key 2048
openssl req -new -sha256 -key ca.key -out ca.csr -subj "/CN=ROOTCA"
openssl x509 -req -days 36500 -sha256 -extensions v3_ca -signkey ca.key -in ca.csr -out ca.cer
openssl genrsa -out server.key 2048
openssl req -new -sha256 -key server.key -out server.csr -subj "/CN=test.com"
openssl x509 -req -days 36500 -sha256 -extensions v3_req  -CA  ca.cer -CAkey ca.key  -CAserial ca.srl  -CAcreateserial -in server.csr -out server.cer
openssl genrsa -out client.key 2048
openssl req -new -sha256 -key client.key  -out client.csr -subj "/CN=CLIENT"
openssl x509 -req -days 36500 -sha256 -extensions v3_req  -CA  ca.cer -CAkey ca.key  -CAserial ca.srl  -CAcreateserial -in client.csr -out client.cer
`

// the tutorial's admin key, configured on the test gateway so its header is used as written
const TUTORIAL_KEY = 'edd1c9f034335f136f87ad84b625c8f1'

/** "Note that the newline character in the certificate needs to be replaced with its escape character \n" */
const escaped = (pem: string): string => pem.trim().replace(/\n/g, '\\n')

t.test('the client-to-apisix-mtls tutorial: its curl commands work against our admin port', async (t) => {
  const dir = await tempDir(t, 'tutorial-')
  await run('sh', ['-e', '-c', OPENSSL], { cwd: dir })
  const pem = async (f: string): Promise<string> => escaped(await readFile(`${dir}/${f}`, 'utf8'))
  const etcd = await startEtcd(t)
  const gw = await startGateway(t, {
    etcd: etcd.url,
    config: { deployment: { admin: { admin_key: [{ name: 'admin', key: TUTORIAL_KEY, role: 'admin' }] } } },
  })
  const base = `http://127.0.0.1:${gw.admin}`
  const curl = async (args: string[]): Promise<{ status: number; body: Record<string, unknown> }> => {
    const { stdout } = await run('curl', ['-s', '-w', '\\n%{http_code}', ...args], { cwd: dir })
    const nl = stdout.lastIndexOf('\n')
    return { status: Number(stdout.slice(nl + 1)), body: JSON.parse(stdout.slice(0, nl)) as Record<string, unknown> }
  }

  const ssl = await curl([
    '-X', 'PUT', `${base}/apisix/admin/ssls/1`,
    '--header', `X-API-KEY: ${TUTORIAL_KEY}`,
    '--header', 'Content-Type: application/json',
    '--data-raw', `{
    "sni": "test.com",
    "cert": "${await pem('server.cer')}",
    "key": "${await pem('server.key')}",
    "client": {
        "ca": "${await pem('ca.cer')}"
    }
}`,
  ])
  t.equal(ssl.status, 201, JSON.stringify(ssl.body))
  t.match(ssl.body, { key: '/apisix/ssls/1', value: { sni: 'test.com', client: { ca: String } } })
  t.equal(ssl.body['warning'], undefined, 'a CN-only certificate for test.com covers its SNI')

  const route = await curl([
    '-X', 'PUT', `${base}/apisix/admin/routes/1`,
    '--header', `X-API-KEY: ${TUTORIAL_KEY}`,
    '--header', 'Content-Type: application/json',
    '--data-raw', `{
    "uri": "/anything",
    "plugins": {
        "proxy-rewrite": {
            "headers": {
                "X-Ssl-Client-Fingerprint": "$ssl_client_fingerprint",
                "X-Ssl-Client-Serial": "$ssl_client_serial",
                "X-Ssl-Client-S-DN": "$ssl_client_s_dn"
            }
        }
    },
    "upstream": {
        "nodes": {
            "httpbin.org":1
        },
        "type":"roundrobin"
    }
}`,
  ])
  t.equal(route.status, 201, JSON.stringify(route.body))
  t.match(route.body, { key: '/apisix/routes/1', value: { uri: '/anything', plugins: { 'proxy-rewrite': { headers: { 'X-Ssl-Client-Serial': '$ssl_client_serial' } } } } })

  const got = await adminOf({ admin: gw.admin }).get('ssls/1', { key: TUTORIAL_KEY })
  t.equal(got.status, 200)
  t.equal(got.json.value.key, undefined, 'the server key is never read back')

  // the tutorial proxies to httpbin.org; this machine has no Internet, so the node moves to a local echo
  const echo = await startEcho(t)
  const moved = await adminOf({ admin: gw.admin }).patch('routes/1', { upstream: { nodes: { [echo.hostPort]: 1 }, type: 'roundrobin' } }, { key: TUTORIAL_KEY })
  t.equal(moved.status, 200, moved.text)
  // the tutorial's test command, with the test gateway's TLS port for 9443
  const test = ['--resolve', `test.com:${gw.https}:127.0.0.1`, `https://test.com:${gw.https}/anything`, '-k', '--cert', './client.cer', '--key', './client.key']
  const echoed = await eventually(() => curl(test), (r) => r.status === 200, { timeoutMs: 20_000, describe: gw.output })
  const headers = echoed.body['headers'] as Record<string, string>
  const { stdout: fp } = await run('openssl', ['x509', '-in', 'client.cer', '-noout', '-fingerprint', '-sha1'], { cwd: dir })
  t.equal(headers['x-ssl-client-fingerprint'], fp.trim().split('=')[1]?.replace(/:/g, '').toLowerCase(), 'fingerprint: SHA-1, lower-case hex')
  const { stdout: serial } = await run('openssl', ['x509', '-in', 'client.cer', '-noout', '-serial'], { cwd: dir })
  t.equal(headers['x-ssl-client-serial'], serial.trim().split('=')[1], 'serial: upper-case hex, as openssl prints it')
  t.equal(headers['x-ssl-client-s-dn'], 'CN=CLIENT')
  const refused = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', ...test.slice(0, 4)], { cwd: dir }).then((r) => r.stdout, () => 'handshake refused')
  t.not(refused, '200', `without the client certificate: ${refused}`)
})
