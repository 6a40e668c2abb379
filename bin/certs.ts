/**
 * `bin/apisix certs [-c FILE] [--expiring-within N{d,h}] [--json]` (CONTRACT.md "The command
 * line"): reads the ssl objects and consumers from etcd, lists every server certificate, client
 * CA and consumer certificate soonest expiry first. Exit 0, 1 when a listed certificate has
 * expired; a bad flag, a bad config or etcd failing throws, and bin/cli.ts prints the one line and
 * exits 2. Private keys are never read or decrypted: only certificates are needed.
 */
import type { Etcd3 } from 'etcd3'
import type { LocalConfig } from '../core/config/local-schema.js'
import { loadLocalConfig } from '../core/config/local.js'
import { crlReportRows } from '../core/x509/crl.js'
import { certificateRecords, type ConsumerLike, type SkippedCert, type SslLike } from '../core/x509/records.js'
import { parseCertPem } from '../core/x509/cert.js'
import { createEtcdClient } from '../core/etcd/client.js'
import { dirOf, parseKey, type ResourceName } from '../core/etcd/keys.js'
import { listPrefix } from '../core/etcd/prefix-watch.js'
import { waitForEtcd } from '../core/etcd/wait.js'
import { GatewayError } from '../core/errors.js'
import { buildReport, formatJson, formatTable, parseWithin, reportExitCode } from './certs-report.js'

/** How long the command waits for etcd at most (startup_retry is for a gateway, not a one-shot command). */
const RETRY_SECONDS = 3

/** `bin/apisix certs`: prints the expiry report; returns the exit code (0 or 1). */
export async function certs(o: { file: string; within: string | undefined; json: boolean }): Promise<number> {
  let withinMs: number | undefined
  if (o.within !== undefined) {
    const w = parseWithin(o.within)
    if (!w.ok) throw new GatewayError('GW_CLI_USAGE', [w.error])
    withinMs = w.value
  }
  const config = loadLocalConfig(o.file)
  const etcd = createEtcdClient(config)
  try {
    await waitForEtcd(etcd, shortRetry(config))
    const prefix = config.deployment.etcd.prefix
    const [ssls, consumers] = await Promise.all([readObjects(etcd, prefix, 'ssls'), readObjects(etcd, prefix, 'consumers')])
    const skipped: SkippedCert[] = []
    const records = certificateRecords(
      ssls.map(([id, v]) => ({ ...(v as SslLike), id })),
      consumers.map(([id, v]) => ({ ...(v as ConsumerLike), username: (v as ConsumerLike).username ?? id })),
      parseCertPem,
      (s) => skipped.push(s),
      crlReportRows,
    )
    for (const s of skipped) process.stderr.write(`warning: ${s.kind === 'consumer' ? 'consumers' : 'ssls'}/${s.id} (${s.kind}): certificate not read: ${s.reason}\n`)
    const rows = buildReport(records, new Date(), withinMs)
    process.stdout.write(o.json ? formatJson(rows) : formatTable(rows))
    return reportExitCode(rows)
  } finally {
    etcd.close()
  }
}

function shortRetry(c: LocalConfig): LocalConfig {
  const etcd = { ...c.deployment.etcd, startup_retry: Math.min(c.deployment.etcd.startup_retry, RETRY_SECONDS) }
  return { ...c, deployment: { ...c.deployment, etcd } }
}

/** Every object of one resource as [id, parsed JSON object], read in pages at one revision; values that are not JSON objects are reported and left out. */
async function readObjects(etcd: Etcd3, prefix: string, res: ResourceName): Promise<[string, object][]> {
  const out: [string, object][] = []
  try {
    await listPrefix(etcd, dirOf(prefix, res), (kvs) => {
      for (const kv of kvs) {
        const k = parseKey(prefix, kv.key)
        if (k === undefined) continue
        const value = parseObject(kv.value)
        if (value === undefined) process.stderr.write(`warning: ${res}/${k.id}: not a JSON object; left out\n`)
        else out.push([k.id, value])
      }
    })
    return out
  } catch (err) {
    throw new GatewayError('GW_ETCD_FAILED', [(err as Error).message.split('\n')[0] ?? String(err)], { cause: err })
  }
}

function parseObject(text: string): object | undefined {
  try {
    const v: unknown = JSON.parse(text)
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? v : undefined
  } catch {
    return undefined
  }
}
