import { ambiguousPath } from '../net/ambiguous-path.js'
import type { CertFailureReason } from '../x509/cert.js'
import type { ClientRules, TlsFacts } from './facts.js'

/** Why the gate refused a request (the `reason` label of `apisix_client_cert_failures_total`). */
export type GateReason = CertFailureReason

/** The gate's verdict for one request. */
export type GateResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly status: 400; readonly error_msg: string; readonly reason: GateReason; readonly close?: true }

const PASS: GateResult = Object.freeze({ ok: true })

type Refusal = Extract<GateResult, { ok: false }>
const refuse = (error_msg: string, reason: GateReason): Refusal => ({ ok: false, status: 400, error_msg, reason })

/** The failure category of a `$ssl_client_verify` value other than SUCCESS. */
export function verifyReason(verify: string): CertFailureReason {
  if (verify === 'NONE') return 'no_certificate'
  if (/certificate has expired|certificate is not yet valid/.test(verify)) return 'expired'
  if (/certificate chain too long|path length constraint exceeded/.test(verify)) return 'depth'
  if (verify === 'FAILED:certificate revoked') return 'revoked'
  if (verify === 'FAILED:CRL has expired') return 'crl_expired'
  return 'untrusted'
}

/**
 * The first of the object's `skip_mtls_uri_regex` that matches the normalised path; undefined
 * when none does, or when the path as sent (`rawPath`) is one a common server reads differently
 * (core/net/ambiguous-path.ts): such a path never counts as whitelisted.
 */
export function skipMatch(rules: ClientRules | undefined, path: string, rawPath: string): RegExp | undefined {
  const r = rules?.skip.find((x) => x.test(path))
  return r && ambiguousPath(rawPath, path) === undefined ? r : undefined
}

/**
 * The per-request client-certificate check of APISIX's `verify_https_client` (spec §6.4), for
 * HTTPS requests only (no facts: plain HTTP, nothing to check): when the serving object has
 * `skip_mtls_uri_regex`, a `path` (the normalised `$uri`, the one that is routed and proxied)
 * matched by none of them needs a verified certificate, and so does one whose `rawPath` (as sent,
 * without the query: what the upstream gets) a common server reads differently. The SNI/Host
 * check that APISIX makes in the same function is core/pipeline/authority.ts's
 * misdirectedRequest (421), asked first.
 */
export function mtlsGate(facts: TlsFacts | undefined, path: string, rawPath: string): GateResult {
  if (!facts) return PASS
  const rules = facts.client
  // without a skip list only verified clients get a connection; one whose certificate was
  // revoked since (core/tls/revocation.ts) gets 400 and the connection is closed
  if (rules && rules.skip.length === 0 && facts.verify !== 'SUCCESS' && facts.verify !== 'NONE')
    return { ...refuse(`client certificate verification is not passed: ${facts.verify}`, verifyReason(facts.verify)), close: true }
  if (!rules || rules.skip.length === 0 || facts.verify === 'SUCCESS') return PASS
  const matched = rules.skip.some((r) => r.test(path))
  const ambiguous = matched ? ambiguousPath(rawPath, path) : undefined
  if (matched && ambiguous === undefined) return PASS
  const why = ambiguous === undefined ? '' : ` (the path holds ${ambiguous}, which some servers read as another path: it is never whitelisted)`
  return facts.verify === 'NONE'
    ? refuse(`client certificate was not present${why}`, 'no_certificate')
    : refuse(`client certificate verification is not passed: ${facts.verify}${why}`, verifyReason(facts.verify))
}
