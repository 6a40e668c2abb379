/**
 * The web UI at /ui/ in a real browser (Debian's chromium driven by playwright-core) against a
 * real gateway and etcd: one browser, one gateway for the whole file.
 */
import t from 'tap'
import { existsSync, mkdirSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'
import { startEtcd } from '../lib/etcd.js'
import { ROOT, startGateway, VIEWER_KEY, KEY } from '../lib/gateway.js'
import { startEcho } from '../lib/echo.js'
import { adminOf } from '../lib/admin.js'
import { issue, makeCa } from '../lib/certs.js'
import { sClient } from '../lib/openssl.js'
import { tempDir } from '../lib/proc.js'
import { eventually } from '../lib/eventually.js'

const DAY = 86_400_000
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p))
const XSS = '<img src=x onerror=alert(1)>'
const URGENT = '#c62828'

t.test('web UI in a browser', async (t) => {
  if (!CHROMIUM) throw new Error("no chromium: bin/setup.sh installs Debian's chromium (APISIX_SETUP_TESTS=1, as npm test sets)")
  if (!existsSync(join(ROOT, 'dist', 'ui', 'app.js'))) throw new Error('the web UI is not built: run bin/setup.sh (node ui/build.mjs)')
  const etcd = await startEtcd(t)
  const echo = await startEcho(t)
  const gw = await startGateway(t, { etcd: etcd.url })
  const admin = adminOf(gw)
  const origin = `http://127.0.0.1:${gw.admin}`
  const dir = await tempDir(t, 'ui-')

  const ca = makeCa('UI Test CA')
  const server = issue(ca, { cn: 'ui.test', sans: ['ui.test', 'www.ui.test'], notAfter: new Date(Date.now() + 60 * DAY + 3_600_000) })
  await writeFile(join(dir, 'ui.test.crt'), server.cert)
  await writeFile(join(dir, 'ui.test.key'), server.key)
  const ten = issue(ca, { cn: 'ten.test', sans: ['ten.test'], notAfter: new Date(Date.now() + 10 * DAY + 3_600_000) })
  const xssCa = makeCa(XSS)
  const xssServer = issue(undefined, { cn: XSS, sans: ['xss.test'], notAfter: new Date(Date.now() + 80 * DAY) })
  const mtlsServer = issue(ca, { cn: 'm.test', sans: ['m.test'] })
  const put = async (path: string, body: unknown) => {
    const r = await admin.put(path, body)
    t.ok(r.status === 200 || r.status === 201, `${path}: ${r.text}`)
  }
  await put('ssls/ten', { snis: ['ten.test'], cert: ten.cert, key: ten.key })
  await put('ssls/xss', { snis: ['xss.test'], cert: xssServer.cert, key: xssServer.key, client: { ca: xssCa.cert }, desc: XSS })
  await put('ssls/mtls', { snis: ['m.test'], cert: mtlsServer.cert, key: mtlsServer.key, client: { ca: ca.cert, skip_mtls_uri_regex: ['^/health$'] } })
  await put('routes/public', { uri: '/public/*', upstream: { type: 'roundrobin', nodes: { [echo.hostPort]: 1 } }, desc: XSS, labels: { team: '<b>x</b>' } })

  const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] })
  t.teardown(() => browser.close())
  const dialogs: string[] = []
  const consoleErrors: string[] = []
  const outside: string[] = []
  const open = async (): Promise<Page> => {
    const page = await browser.newPage({ viewport: { width: 1500, height: 900 } })
    page.on('dialog', (d) => {
      dialogs.push(d.message())
      void d.dismiss()
    })
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text())
    })
    page.on('pageerror', (e) => consoleErrors.push(e.message))
    // nothing is loaded from outside the gateway: any other request is recorded and refused
    await page.route('**/*', (route) => {
      const url = route.request().url()
      if (url.startsWith(`${origin}/`)) return route.continue()
      outside.push(url)
      return route.abort()
    })
    return page
  }
  const login = async (page: Page, key: string) => {
    await page.goto(`${origin}/ui/`)
    await page.fill('#login-key', key)
    await page.click('#login-submit')
    await page.waitForSelector('#role')
  }

  const page = await open()

  t.test('the page and its headers: CSP without inline script, no framing, no sniffing', async (t) => {
    const r = await page.goto(`${origin}/ui`)
    t.equal(r?.url(), `${origin}/ui/`, '/ui redirects to /ui/')
    const h = r?.headers() ?? {}
    t.match(h['content-security-policy'], /default-src 'self'/)
    t.notMatch(h['content-security-policy'], /unsafe-inline|unsafe-eval/)
    t.equal(h['x-frame-options'], 'DENY')
    t.equal(h['x-content-type-options'], 'nosniff')
    const html = await (await fetch(`${origin}/ui/`)).text()
    t.notMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script in the page')
  })

  t.test('log in with the admin key', async (t) => {
    await login(page, KEY)
    t.equal(await page.textContent('#role'), 'admin')
    t.equal(await page.evaluate<boolean>(`location.href.includes(${JSON.stringify(KEY)})`), false, 'the key is not in the URL')
    t.equal(await page.evaluate<string | null>("sessionStorage.getItem('apisix-admin-key')"), KEY, 'kept in sessionStorage')
  })

  t.test('add a certificate from files: listed with its days left, then served', async (t) => {
    await page.setInputFiles('#add-cert-file', join(dir, 'ui.test.crt'))
    await page.waitForSelector('#add-sans label:has-text("www.ui.test")')
    t.same(await page.$$eval('#add-sans label', (ls) => ls.map((l) => l.textContent)), ['ui.test', 'www.ui.test'], 'SNIs offered from the SANs')
    await page.setInputFiles('#add-key-file', join(dir, 'ui.test.key'))
    await page.fill('#add-id', 'ui1')
    await page.click('#add-submit')
    const days = await page.waitForSelector('tr[data-ssl="ui1"] .days')
    t.equal(await days.textContent(), '60 d')
    t.equal(await page.textContent('tr[data-ssl="ui1"] .snis'), 'ui.test, www.ui.test')
    t.equal(await page.textContent('tr[data-ssl="ui1"] .keytypes'), 'RSA')
    let served = ''
    for (const deadline = Date.now() + 15_000; Date.now() < deadline && !/CN ?= ?ui\.test/.test(served); ) {
      served = (await sClient(gw.https, ['-servername', 'ui.test'])).stdout
    }
    t.match(served, /subject=\s*CN ?= ?ui\.test/, 'openssl s_client -servername ui.test gets the new certificate')
  })

  t.test("the admin's 400 is shown at the field it names", async (t) => {
    await page.fill('#add-cert', server.cert)
    // the SNIs come from the pasted certificate once the admin has read it
    await page.waitForSelector('#add-sans label:has-text("www.ui.test")')
    await page.fill('#add-key', ca.key)
    await page.click('#add-submit')
    const err = await page.waitForSelector('.add-ssl .field.has-error')
    t.equal(await err.getAttribute('data-field'), 'key', await err.textContent() ?? '')
    await page.fill('#add-cert', '')
    await page.fill('#add-key', '')
  })

  t.test('set a skip list: the explain view changes from 400 to proxied', async (t) => {
    const explain = async () => {
      await page.click('#nav-explain')
      await page.fill('#explain-sni', 'm.test')
      await page.fill('#explain-uri', '/public/x')
      await page.click('#explain-submit')
      const r = await page.waitForSelector('#explain-result')
      return r.getAttribute('data-outcome')
    }
    t.equal(await explain(), '400', 'no certificate on a path outside the skip list')
    await page.click('#nav-certificates')
    await page.click('tr[data-ssl="mtls"] button.edit')
    await eventually(() => page.inputValue('#edit-ca'), (v) => v.includes('BEGIN CERTIFICATE'))
    await page.fill('#edit-skip', '^/health$\n^/public/')
    await page.click('#edit-submit')
    await page.waitForSelector('tr[data-ssl="mtls"] .skip:has-text("^/public/")')
    t.equal(await explain(), 'proxied')
    t.match(await page.textContent('#explain-result'), /matched \^\/public\//)
  })

  t.test('an XSS subject renders as text and runs nothing', async (t) => {
    const errorsBefore = consoleErrors.length
    await page.click('#nav-certificates')
    await page.waitForSelector('tr[data-ssl="xss"]')
    t.match(await page.textContent('tr[data-ssl="xss"] .issuer'), XSS, 'the issuer shows the characters')
    t.match(await page.textContent('tr[data-ssl="xss"] .client'), XSS, 'so does the client CA subject')
    t.equal(await page.$$eval('#certs img', (x) => x.length), 0, 'no element was made from it')
    await page.click('#nav-resources')
    await page.waitForSelector('#resource-list tr[data-id="public"]')
    t.match(await page.textContent('#resource-list tr[data-id="public"] .desc'), XSS, 'a description as text')
    t.equal(await page.textContent('#resource-list tr[data-id="public"] .labels'), 'team=<b>x</b>', 'labels as text')
    t.equal(await page.$$eval('#resource-list b, #resource-list img', (x) => x.length), 0)
    await page.click('#nav-expiry')
    await page.waitForSelector('#expiry-chart g.item[data-id="xss"]')
    t.equal(await page.$$eval('img', (x) => x.length), 0)
    t.same(dialogs, [], 'no dialog opened')
    t.same(consoleErrors.slice(errorsBefore), [], 'no console error')
  })

  t.test('the expiry chart shows a certificate that expires in 10 days in the urgent colour', async (t) => {
    await page.click('#nav-expiry')
    const bar = await page.waitForSelector('#expiry-chart g.item[data-id="ten"][data-kind="server"] rect')
    t.equal(await bar.getAttribute('fill'), URGENT)
    t.equal(await page.getAttribute('#expiry-chart g.item[data-id="ten"][data-kind="server"]', 'data-days'), '10')
    t.equal(await page.getAttribute('#expiry-chart g.item[data-id="ui1"][data-kind="server"]', 'data-urgency'), 'ok', 'a 60-day certificate is not urgent')
    await page.click('#nav-certificates')
    const cell = await page.waitForSelector('tr[data-ssl="ten"] .days')
    t.equal(await page.evaluate<string>(`getComputedStyle(document.querySelector('tr[data-ssl="ten"] .days')).backgroundColor`), 'rgb(198, 40, 40)', 'the table uses the same colour')
    t.equal(await cell.textContent(), '10 d')
  })

  t.test('Live TLS shows the handshakes the gateway counted', async (t) => {
    await page.click('#nav-tls')
    const total = await eventually(() => page.textContent('#table-handshakes tr[data-key="ok"] .total'), (v) => Number(v) > 0, { timeoutMs: 15_000 })
    t.ok(Number(total) > 0, `the ok handshakes of openssl s_client are counted (${total})`)
  })

  t.test('screenshot of the certificates page for the README', async (t) => {
    await page.click('#nav-certificates')
    await page.waitForSelector('tr[data-ssl="ui1"]')
    // docs/ui-certificates.png is rewritten when asked (UPDATE_UI_SCREENSHOT=1) or missing, so that
    // a test run leaves the work tree clean; otherwise the picture goes to the test's temp dir
    const readme = join(ROOT, 'docs', 'ui-certificates.png')
    const update = process.env['UPDATE_UI_SCREENSHOT'] === '1' || !existsSync(readme)
    if (update) mkdirSync(join(ROOT, 'docs'), { recursive: true })
    const png = await page.screenshot({ path: update ? readme : join(dir, 'ui-certificates.png'), fullPage: true })
    t.ok(png.length > 10_000, `a real picture (${png.length} bytes)`)
  })

  t.test('a viewer key has no write controls, and a direct write with it gets 403', async (t) => {
    const viewer = await open()
    await login(viewer, VIEWER_KEY)
    t.equal(await viewer.textContent('#role'), 'viewer')
    await viewer.waitForSelector('tr[data-ssl="ui1"]')
    t.equal(await viewer.$$eval('#add-ssl, #certs button', (x) => x.length), 0, 'no add form, no edit or delete button')
    await viewer.click('#nav-resources')
    await viewer.waitForSelector('#resource-list tr[data-id="public"]')
    t.equal(await viewer.$$eval('#new-resource, #resource-list button.delete', (x) => x.length), 0)
    const status = await viewer.evaluate(async (key) => {
      const r = await fetch('/apisix/admin/routes/public', { method: 'DELETE', headers: { 'x-api-key': key } })
      return r.status
    }, VIEWER_KEY)
    t.equal(status, 403)
    t.equal((await admin.get('routes/public')).status, 200, 'the route is still there')
    await viewer.close()
  })

  t.test('nothing ran that should not have', async (t) => {
    t.same(dialogs, [], 'no dialog opened')
    // Chromium logs every 4xx answer to fetch ("Failed to load resource"); the tests above asked for some
    t.same(consoleErrors.filter((e) => !/^Failed to load resource: the server responded with a status of 4\d\d/.test(e)), [], 'no console error')
    t.same(outside, [], 'nothing requested outside the gateway')
  })
})
