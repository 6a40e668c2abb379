import type { CrlSet } from '../x509/crl.js'
import type { X509Certificate } from 'node:crypto'
import type { Static, TSchema } from 'typebox'

/** A reply that ends the request; written by core/pipeline/respond.ts. */
export interface Reply {
  readonly status: number
  readonly body?: string | Readonly<Record<string, unknown>>
  readonly headers?: Readonly<Record<string, string>>
}
/** What a phase returns: a Reply ends the request, undefined lets it go on. */
export type Step = Reply | undefined

/** A client certificate's facts, in nginx's formats (CONTRACT.md "The data plane"). */
export interface ClientCert {
  /**
   * true when verified in this connection's handshake against the ssl object's client.ca, or
   * when a trusted proxy passed it (source 'header': the proxy vouches; mtls-auth's
   * validate_certificate still checks its chain)
   */
  readonly verified: boolean
  /** where it came from: this connection's handshake, or a trusted proxy's header */
  readonly source: 'tls' | 'header'
  readonly der: Buffer
  /** `$ssl_client_verify`: SUCCESS, FAILED:reason or NONE */
  readonly verify: string
  readonly fingerprint: string
  readonly serial: string
  readonly subjectDn: string
  readonly issuerDn: string
  /** SHA-256 of the DER, lower-case hex: the key consumers are looked up by */
  readonly sha256: string
  /** validity bounds, epoch ms, when the source read them (mtls-auth re-checks dates per request) */
  readonly notBefore?: number
  readonly notAfter?: number
  /** the parsed certificate, when the source already has one (parsing costs about 0.4 ms) */
  readonly x509?: X509Certificate
  /** intermediates a trusted proxy passed with it (RFC 9440 `Client-Cert-Chain`), for chain building */
  readonly intermediates?: readonly Buffer[]
}

/** The upstream request as plugins may change it before the proxy sends it. */
export interface UpstreamRequest {
  method: string
  /** path and query sent upstream */
  uri: string
  /** Host header for the upstream; undefined: decided by the upstream's pass_host */
  host: string | undefined
  /** header edits applied after the default proxy headers (lower-case names) */
  readonly setHeaders: Map<string, string | string[]>
  readonly addHeaders: Array<[string, string]>
  readonly removeHeaders: Set<string>
  /** whether any header edit is in place (read without making the three collections) */
  readonly edited: boolean
}

/** The view of a request that plugins may use (their only channel, DESIGN.md §2.6). */
export interface RequestContext {
  readonly method: string
  /** the normalised path (percent-decoded, dot segments resolved, slashes merged, no query) */
  readonly uri: string
  /** the query string without `?`, or '' */
  readonly query: string
  /** the Host, normalised (lower case, no port, no trailing dot) */
  readonly host: string
  readonly remoteAddr: string
  /** the request came over TLS, or through a trusted proxy that said X-Forwarded-Proto: https */
  readonly secure: boolean
  readonly sni: string | undefined
  readonly headers: Readonly<Record<string, string | string[] | undefined>>
  /** the client certificate: handshake-verified, presented unverified, or from a trusted header */
  readonly clientCert: ClientCert | undefined
  /** why a trusted proxy's certificate header could not be used (malformed), so a 401 can say so */
  readonly clientCertError?: string | undefined
  /** the matched ssl object's client.ca (PEM), when the request came over TLS on such an object */
  readonly sslClientCa: string | undefined
  /** that object's `client.depth` (intermediates allowed below its CA); undefined with no such object */
  readonly sslClientDepth: number | undefined
  /** the same object's `client.crl`, compiled (the current version's, on an open connection too) */
  readonly sslClientCrls: CrlSet | undefined
  /** `$name` variables (nginx and APISIX ones), computed on first use */
  varOf(name: string): string | undefined
  /** set by an authentication plugin */
  consumer: { readonly username: string } | undefined
  readonly upstream: UpstreamRequest
  /** the consumer index of the current generation (sha256 of DER → username) */
  consumerByCertSha256(sha256: string): string | undefined
  /** a clock, passed in so plugins stay pure */
  readonly nowMs: number
}

/** A plugin: a declaration with a schema, compiled once per generation, phases that may reply. */
export interface PluginDef<S extends TSchema = TSchema, C = unknown> {
  /** APISIX's name: the key under `plugins` in a route */
  readonly name: string
  readonly version: string
  /** higher runs first; unique across plugins (checked at startup) */
  readonly priority: number
  /** route / global rule side conf, also checked by the admin */
  readonly schema: S
  /** consumer side conf for authentication plugins */
  readonly consumerSchema?: TSchema
  /** semantic checks beyond the schema (regexes compile, patterns parse); a message or undefined */
  check?(conf: Static<S>): string | undefined
  /** semantic checks of the consumer side conf */
  checkConsumer?(conf: unknown): string | undefined
  /** a warning for the admin's envelope (the conf is valid but probably not what was meant) */
  warn?(conf: Static<S>): string | undefined
  compile(conf: Static<S>): C
  rewrite?(c: C, ctx: RequestContext): Step | Promise<Step>
  access?(c: C, ctx: RequestContext): Step | Promise<Step>
}

/** Declares a plugin with its types inferred. */
export const definePlugin = <S extends TSchema, C>(def: PluginDef<S, C>): PluginDef<S, C> => def
