import { normalizeHost } from '../net/hostname.js'
import type { CertFailureReason } from './client-cert.js'
import type { ClientRules, TlsFacts } from './facts.js'
import type { SniIndex } from './sni-index.js'

/** Why the gate refused a request (the `reason` label of `apisix_client_cert_failures_total`). */
export type GateReason = CertFailureReason | 'sni_host_mismatch'

/** The gate's verdict for one request. */
export type GateResult = { readonly ok: true } | { readonly ok: false; readonly status: 400; readonly error_msg: string; readonly reason: GateReason }

const PASS: GateResult = Object.freeze({ ok: true })

const refuse = (error_msg: string, reason: GateReason): GateResult => ({ ok: false, status: 400, error_msg, reason })

/** The failure category of a `$ssl_client_verify` value other than SUCCESS. */
export function verifyReason(verify: string): CertFailureReason {
  if (verify === 'NONE') return 'no_certificate'
  if (/certificate has expired|certificate is not yet valid/.test(verify)) return 'expired'
  if (/certificate chain too long|path length constraint exceeded/.test(verify)) return 'depth'
  return 'untrusted'
}

/**
 * The per-request client-certificate checks of APISIX's `verify_https_client` (spec §6.4), for
 * HTTPS requests only (no facts: plain HTTP, nothing to check):
 * A. when the serving object has `skip_mtls_uri_regex`, a `path` (the normalised `$uri`, the one
 *    that is routed and proxied) matched by none of them needs a verified certificate;
 * B. when the Host names an ssl object that has `client`, the SNI (or fallback_sni when the client
 *    sent none) must equal the Host, compared without case, port or trailing dot.
 * Pure: `hostHasClientRules` looks the normalised Host up in the current generation's SNI index.
 */
export function mtlsGate(facts: TlsFacts | undefined, path: string, host: string, hostHasClientRules: (host: string) => boolean): GateResult {
  if (!facts) return PASS
  const rules = facts.client
  if (rules && rules.skip.length > 0 && facts.verify !== 'SUCCESS' && !rules.skip.some((r) => r.test(path))) {
    return facts.verify === 'NONE'
      ? refuse('client certificate was not present', 'no_certificate')
      : refuse(`client certificate verification is not passed: ${facts.verify}`, verifyReason(facts.verify))
  }
  const h = normalizeHost(host)
  if (h !== '' && hostHasClientRules(h) && facts.matchSni !== h) {
    return refuse(`client certificate verified with SNI ${facts.matchSni === '' ? '(none)' : facts.matchSni}, but the host is ${h}`, 'sni_host_mismatch')
  }
  return PASS
}

/** `hostHasClientRules` over a generation's SNI index: the object the Host names has `client`. */
export const hostRulesIn =
  (index: SniIndex<{ readonly id: string; readonly snis: readonly string[]; readonly updateTime: number; readonly client: ClientRules | undefined }>) =>
  (host: string): boolean =>
    index.lookup(host)?.client !== undefined
