/**
 * A certificate authority run with the `openssl` command line, as operators run one: `openssl
 * req`/`x509` issue certificates from extension sections, `openssl ca -revoke` and `openssl ca
 * -gencrl` keep a real index and make real CRLs. Synchronous (execFileSync): tests build their PKI
 * up front. Every CA lives in its own temp dir, removed by cleanup().
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { X509Certificate } from 'node:crypto'

/** A certificate this CA issued (or the CA's own), with its files. */
export interface OsslCert {
  readonly name: string
  readonly cert: string
  readonly key: string
  readonly certPath: string
  readonly keyPath: string
  readonly der: Buffer
  /** upper-case hex serial */
  readonly serial: string
}

const run = (args: string[], cwd: string): string => execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] }).toString()

let seq = 0

export class OpensslCa {
  readonly dir: string
  readonly self: OsslCert
  private readonly conf: string

  /**
   * A CA: self-signed (a root) when `parent` is undefined, else issued by `parent` as an
   * intermediate. `ext` adds lines to the CA certificate's extension section.
   */
  constructor(cn: string, parent?: OpensslCa, ext: string[] = []) {
    this.dir = mkdtempSync(join(tmpdir(), 'ossl-ca-'))
    writeFileSync(join(this.dir, 'index.txt'), '')
    writeFileSync(join(this.dir, 'crlnumber'), '1000\n')
    writeFileSync(join(this.dir, 'serial'), '1000\n')
    this.conf = join(this.dir, 'ca.cnf')
    writeFileSync(
      this.conf,
      [
        '[ ca ]', 'default_ca = this', '[ this ]', `dir = ${this.dir}`, 'database = $dir/index.txt', 'crlnumber = $dir/crlnumber',
        'certificate = $dir/ca.crt', 'private_key = $dir/ca.key', 'new_certs_dir = $dir', 'serial = $dir/serial', 'policy = any', 'preserve = yes', 'unique_subject = no', 'copy_extensions = none', 'default_md = sha256', 'default_crl_days = 7', 'crl_extensions = crl_ext',
        '[ any ]', 'countryName = optional', 'organizationName = optional', 'organizationalUnitName = optional', 'commonName = supplied', 'emailAddress = optional', '[ crl_ext ]', 'authorityKeyIdentifier = keyid:always',
        '[ req ]', 'distinguished_name = dn', 'prompt = no', '[ dn ]', 'CN = unused', '',
      ].join('\n'),
    )
    const caExt = ['basicConstraints = critical, CA:TRUE', 'keyUsage = critical, keyCertSign, cRLSign, digitalSignature', 'subjectKeyIdentifier = hash', ...ext]
    this.self = parent ? parent.issueAs(this.dir, 'ca', cn, caExt) : this.selfSign(cn, caExt)
  }

  private selfSign(cn: string, ext: string[]): OsslCert {
    const keyPath = join(this.dir, 'ca.key')
    const certPath = join(this.dir, 'ca.crt')
    const reqConf = join(this.dir, 'req.cnf')
    writeFileSync(reqConf, `[ req ]\ndistinguished_name = dn\nprompt = no\n[ dn ]\nCN = ${cn}\n[ v3 ]\n${ext.join('\n')}\n`)
    run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '30', '-config', reqConf, '-extensions', 'v3'], this.dir)
    return this.load(cn, certPath, keyPath)
  }

  private load(name: string, certPath: string, keyPath: string): OsslCert {
    const cert = readFileSync(certPath, 'utf8')
    const x = new X509Certificate(cert)
    return { name, cert, key: readFileSync(keyPath, 'utf8'), certPath, keyPath, der: x.raw, serial: x.serialNumber.toUpperCase() }
  }

  /** Issues into `dir` as `base`.crt/.key a certificate for `subject` (an `/CN=…` string or a CN). */
  issueAs(dir: string, base: string, subject: string, ext: string[]): OsslCert {
    const keyPath = join(dir, `${base}.key`)
    const csrPath = join(dir, `${base}.csr`)
    const certPath = join(dir, `${base}.crt`)
    const extPath = join(dir, `${base}.ext`)
    writeFileSync(extPath, `[ v3 ]\n${ext.join('\n')}\n`)
    const subj = subject.startsWith('/') ? subject : `/CN=${subject}`
    run(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyPath, '-out', csrPath, '-subj', subj], dir)
    run(['ca', '-batch', '-config', this.conf, '-notext', '-in', csrPath, '-out', certPath, '-extfile', extPath, '-extensions', 'v3', '-days', '30', '-rand_serial'], this.dir)
    return this.load(subject, certPath, keyPath)
  }

  /** A client certificate (clientAuth); `ext` replaces the default extension lines when given. */
  issue(subject: string, ext?: string[]): OsslCert {
    return this.issueAs(this.dir, `c${++seq}`, subject, ext ?? ['basicConstraints = CA:FALSE', 'keyUsage = digitalSignature', 'extendedKeyUsage = clientAuth'])
  }

  /**
   * `n` client certificates for `subject` on one key, each with its own serial, made by one
   * `openssl ca -infiles` run (hundreds in well under a second): distinct certificates for tests
   * that need many, PEM each, with the shared key.
   */
  issueMany(subject: string, n: number): { certs: string[]; key: string } {
    const base = `m${++seq}`
    const keyPath = join(this.dir, `${base}.key`)
    const csrPath = join(this.dir, `${base}.csr`)
    const extPath = join(this.dir, `${base}.ext`)
    writeFileSync(extPath, '[ v3 ]\nbasicConstraints = CA:FALSE\nkeyUsage = digitalSignature\nextendedKeyUsage = clientAuth\n')
    run(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyPath, '-out', csrPath, '-subj', subject.startsWith('/') ? subject : `/CN=${subject}`], this.dir)
    // without -out every certificate goes to stdout (with -out, openssl 3.0 keeps only one)
    const out = run(['ca', '-batch', '-config', this.conf, '-notext', '-extfile', extPath, '-extensions', 'v3', '-days', '30', '-rand_serial', '-infiles', ...Array.from({ length: n }, () => csrPath)], this.dir)
    const certs = out.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----\n/g) ?? []
    if (certs.length !== n) throw new Error(`issueMany: ${certs.length} certificates of ${n}`)
    return { certs, key: readFileSync(keyPath, 'utf8') }
  }

  /** Marks a certificate this CA issued as revoked in its index. */
  revoke(c: OsslCert): void {
    run(['ca', '-config', this.conf, '-revoke', c.certPath], this.dir)
  }

  /** Takes a revocation back (the index line returns to valid): the next CRL no longer lists it. */
  unrevoke(c: OsslCert): void {
    const index = join(this.dir, 'index.txt')
    const lines = readFileSync(index, 'utf8').split('\n').map((l) => {
      const f = l.split('\t')
      return f[0] === 'R' && f[3]?.toUpperCase() === c.serial ? ['V', f[1], '', ...f.slice(3)].join('\t') : l
    })
    writeFileSync(index, lines.join('\n'))
  }

  /** A CRL from the index (`openssl ca -gencrl`); `nextUpdate` (UTC) overrides the 7 days. */
  crl(o: { lastUpdate?: Date; nextUpdate?: Date } = {}): string {
    const out = join(this.dir, `crl${++seq}.pem`)
    const t = (d: Date): string => d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z'
    const args = ['ca', '-config', this.conf, '-gencrl', '-out', out]
    if (o.lastUpdate) args.push('-crl_lastupdate', t(o.lastUpdate))
    if (o.nextUpdate) args.push('-crl_nextupdate', t(o.nextUpdate))
    run(args, this.dir)
    return readFileSync(out, 'utf8')
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true })
  }
}
