import type { ResultErrorCode } from '../jobs/result-codes.js'

/**
 * Classification of transport errors (what undici, node:net, node:dns and OpenSSL throw) into
 * the contract's per-URL codes, for downloads and callback deliveries alike.
 */

/** A transport error sorted into a contract code, and whether another attempt could fare better. */
export interface Classified {
  code: ResultErrorCode
  message: string
  retryable: boolean
}

const DNS_PERMANENT = new Set(['ENOTFOUND', 'EAI_NONAME', 'EAI_FAIL', 'EAI_NODATA', 'ENODATA'])
const DNS_TRANSIENT = new Set(['EAI_AGAIN'])
const CONNECT = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'ETIMEDOUT', 'EADDRNOTAVAIL'])
const TIMEOUTS = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])
// OpenSSL's certificate verdicts come through with these codes rather than an ERR_ prefix.
const TLS_CODES = new Set([
  'EPROTO', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'CERT_REVOKED', 'CERT_UNTRUSTED', 'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'HOSTNAME_MISMATCH'
])

const isTls = (c: string): boolean => c.startsWith('ERR_TLS_') || c.startsWith('ERR_SSL_') || c.startsWith('ERR_OSSL_') || TLS_CODES.has(c)
const isMisuse = (c: string): boolean => c === 'UND_ERR_INVALID_ARG' || c.startsWith('ERR_INVALID_') || c === 'UND_ERR_NOT_SUPPORTED'

/**
 * The rules in order: the first whose test matches any error of the chain decides. What is left
 * with a code is a transport fault: resets, closed sockets, framing and parser errors
 * (UND_ERR_SOCKET, ECONNRESET, EPIPE, HPE_*, content-length mismatch, ...).
 */
const RULES: ReadonlyArray<readonly [(code: string) => boolean, ResultErrorCode, boolean]> = [
  [(c) => c === 'BLOCKED_ADDRESS', 'BLOCKED_ADDRESS', false],
  [(c) => DNS_PERMANENT.has(c), 'DNS_FAILED', false],
  [(c) => DNS_TRANSIENT.has(c), 'DNS_FAILED', true],
  [isTls, 'TLS_FAILED', false],
  [(c) => CONNECT.has(c), 'CONNECT_FAILED', true],
  [(c) => TIMEOUTS.has(c), 'TIMEOUT', true],
  [(c) => c === 'UND_ERR_HEADERS_OVERFLOW', 'NETWORK', false],
  [isMisuse, 'INTERNAL', false],
  [() => true, 'NETWORK', true]
]

/** Every error in a cause / AggregateError chain, outermost first (at most 16, cycles cut). */
function chain (err: unknown): unknown[] {
  const out: unknown[] = []
  const queue: unknown[] = [err]
  while (queue.length > 0 && out.length < 16) {
    const e = queue.shift()
    if (e === null || e === undefined || out.includes(e)) continue
    out.push(e)
    if (typeof e === 'object') {
      const { cause, errors } = e as { cause?: unknown, errors?: unknown }
      if (cause !== undefined) queue.push(cause)
      if (Array.isArray(errors)) queue.push(...(errors as unknown[]))
    }
  }
  return out
}

const messageOf = (e: unknown): string => (e instanceof Error && e.message !== '' ? e.message : String(e))

const codeOf = (e: unknown): string | undefined => {
  const code = (e as { code?: unknown }).code
  return typeof code === 'string' ? code : undefined
}

/**
 * Sorts a transport error into the contract's codes, and says whether another attempt could
 * fare better. DNS_FAILED is retryable only for EAI_AGAIN (the resolver could not answer now);
 * ENOTFOUND is the name's authoritative absence, which a retry seconds later will not change.
 */
export function classify (err: unknown): Classified {
  const errors = chain(err)
  for (const [test, code, retryable] of RULES) {
    const e = errors.find((x) => {
      const c = codeOf(x)
      return c !== undefined && test(c)
    })
    if (e !== undefined) return { code, message: messageOf(e), retryable }
  }
  return { code: 'INTERNAL', message: 'unexpected error: ' + messageOf(err), retryable: false }
}
