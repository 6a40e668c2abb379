import t from 'tap'
import { execFile } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { startEtcd } from '../lib/etcd.js'
import { startGateway } from '../lib/gateway.js'
import { adminOf } from '../lib/admin.js'
import { startEcho } from '../lib/echo.js'
import { issue, makeCa } from '../lib/certs.js'
import { closeAgents, httpsGet } from '../lib/tls-client.js'
import { eventually } from '../lib/eventually.js'
import { tempDir } from '../lib/proc.js'

const run = promisify(execFile)

/** nginx's ngx_escape_uri(NGX_ESCAPE_URI_COMPONENT), written out independently for the comparison. */
const nginxEscape = (s: string): string =>
  [...Buffer.from(s)].map((b) => (/[A-Za-z0-9\-._~]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`)).join('')

t.test('$ssl_client_* in proxy-rewrite headers equal what openssl x509 prints for the same certificate', async (t) => {
  const etcd = await startEtcd(t)
  const gw = await startGateway(t, { etcd: etcd.url })
  const admin = adminOf(gw)
  const echo = await startEcho(t, 'vars')
  t.teardown(closeAgents)
  const ca = makeCa('Vars Root CA')
  const server = issue(ca, { cn: 'vars.test', sans: ['vars.test'] })
  // a subject that exercises RFC 2253 escaping: a comma, a plus, UTF-8, several RDNs
  const client = issue(ca, {
    subject: [
      { shortName: 'C', value: 'FR' },
      { shortName: 'O', value: 'Acme, Inc.' },
      { shortName: 'OU', value: 'R+D' },
      { shortName: 'CN', value: 'José Client' },
    ],
    serialHex: '00E3A1B2C3D4E5F60718',
  })
  const dir = await tempDir(t, 'vars-')
  const file = join(dir, 'client.pem')
  await writeFile(file, client.cert)
  const x509 = async (...args: string[]): Promise<string> => (await run('openssl', ['x509', '-in', file, '-noout', ...args])).stdout.trim()
  const after = (s: string): string => s.slice(s.indexOf('=') + 1)

  const put = await admin.put('ssls/vars', { sni: 'vars.test', cert: server.cert, key: server.key, client: { ca: ca.cert } })
  t.equal(put.status, 201, put.text)
  const vars = ['fingerprint', 'serial', 's_dn', 'i_dn', 'verify', 'escaped_cert', 'v_start', 'v_end']
  const set: Record<string, string> = Object.fromEntries(vars.map((v) => [`x-${v.replace(/_/g, '-')}`, `$ssl_client_${v}`]))
  set['x-sni'] = '$ssl_server_name'
  set['x-scheme'] = '$scheme'
  set['x-proto'] = '$ssl_protocol'
  const route = await admin.put('routes/vars', { uri: '/vars', upstream: { nodes: { [echo.hostPort]: 1 } }, plugins: { 'proxy-rewrite': { headers: { set } } } })
  t.equal(route.status, 201, route.text)
  const tls = { port: gw.https, servername: 'vars.test', ca: ca.cert, cert: client.cert, key: client.key }
  const r = await eventually(() => httpsGet('/vars', tls), (x) => x.status === 200, { timeoutMs: 15_000, describe: gw.output })
  const h = r.json.headers as Record<string, string>

  const fp = after(await x509('-fingerprint', '-sha1')).replace(/:/g, '').toLowerCase()
  t.equal(h['x-fingerprint'], fp, `$ssl_client_fingerprint = ${fp}`)
  const serial = after(await x509('-serial'))
  t.equal(h['x-serial'], serial, `$ssl_client_serial = ${serial} (sign padding dropped)`)
  const sdn = after(await x509('-subject', '-nameopt', 'RFC2253'))
  t.equal(h['x-s-dn'], sdn, `$ssl_client_s_dn = ${sdn}`)
  const idn = after(await x509('-issuer', '-nameopt', 'RFC2253'))
  t.equal(h['x-i-dn'], idn, `$ssl_client_i_dn = ${idn}`)
  t.equal(h['x-verify'], 'SUCCESS')
  const pem = (await run('openssl', ['x509', '-in', file])).stdout
  t.equal(h['x-escaped-cert'], nginxEscape(pem), '$ssl_client_escaped_cert: the PEM, URL-encoded as nginx does')
  t.equal(h['x-v-start'], after(await x509('-startdate')))
  t.equal(h['x-v-end'], after(await x509('-enddate')))
  t.equal(h['x-sni'], 'vars.test')
  t.equal(h['x-scheme'], 'https')
  t.match(h['x-proto'], /^TLSv1\.[23]$/)

  // without a client certificate the variables are empty and verify says NONE (an object without client.ca)
  const s2 = issue(ca, { cn: 'plain.test', sans: ['plain.test'] })
  await admin.put('ssls/plain', { sni: 'plain.test', cert: s2.cert, key: s2.key })
  const none = await eventually(() => httpsGet('/vars', { port: gw.https, servername: 'plain.test', ca: ca.cert }), (x) => x.status === 200, { timeoutMs: 15_000 })
  const nh = none.json.headers as Record<string, string>
  t.equal(nh['x-verify'], 'NONE')
  t.equal(nh['x-fingerprint'], undefined, 'an empty value sets no header')
})
