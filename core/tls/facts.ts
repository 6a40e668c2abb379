import type { ClientCert } from '../plugins/types.js'
import type { ChainLink, CrlSet } from '../x509/crl.js'

/**
 * What the TLS front learned about one connection, for the request pipeline: which ssl object
 * served the handshake, the SNI, the client certificate and its verification. Set once per TLS
 * socket by the TLS front (core/server), read per request by core/pipeline.
 */
export interface TlsFacts {
  /** the SNI the client sent, normalised (lower case, no trailing dot); undefined when none */
  readonly sni: string | undefined
  /** the name the handshake was matched with: the SNI, or `apisix.ssl.fallback_sni` when none was sent */
  readonly matchSni: string
  /** id of the ssl object whose policy served the handshake */
  readonly sslId: string
  /** 'TLSv1.2' | 'TLSv1.3' */
  readonly protocol: string
  /** the certificate the client presented (verified or not); undefined when none */
  readonly clientCert: ClientCert | undefined
  /** `$ssl_client_verify`: SUCCESS, FAILED:reason or NONE */
  readonly verify: string
  /** the serving object's client-certificate rules; undefined when it has no `client` */
  readonly client: ClientRules | undefined
  /**
   * The chain passed every check but revocation (OpenSSL's verdict and the depth): only then can
   * a change of the CRLs change `verify`. `links` gives the chain's certificates (leaf first,
   * without the trust anchor), read from the socket on first use.
   */
  readonly chainOk?: boolean
  readonly links?: () => readonly ChainLink[]
}

/** An ssl object's `client` block, compiled once per generation. */
export interface ClientRules {
  /** PEM of the object's client CA(s) */
  readonly ca: string
  readonly depth: number
  /** compiled `skip_mtls_uri_regex`; empty: every request needs a verified certificate (refused at the handshake) */
  readonly skip: readonly RegExp[]
  /** `client.crl` compiled (by issuer, serials in a Set); undefined without one */
  readonly crls?: CrlSet | undefined
  /** `client.crl` as PEM (mtls-auth falls back to it with `client.ca`) */
  readonly crl?: string | undefined
  /** with `crls`: Node's `fingerprint256` of each `client.ca` certificate (core/tls/contexts.ts sentIntermediates) */
  readonly caPrints?: ReadonlySet<string> | undefined
}

const bySocket = new WeakMap<object, TlsFacts>()

/** Records a TLS socket's facts (the TLS front calls this once, before the HTTP server sees the socket). */
export const setTlsFacts = (socket: object, facts: TlsFacts): void => {
  bySocket.set(socket, facts)
}

/** The facts of a request's socket; undefined for plain HTTP. */
export const tlsFactsOf = (socket: object): TlsFacts | undefined => bySocket.get(socket)
