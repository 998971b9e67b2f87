/**
 * The contract's per-URL error codes (`ResultError.code` in openapi.yaml), listed once: the zod
 * enum of stored and served results, the fetcher's result type and the contract test all derive
 * from this list.
 */
export const RESULT_ERROR_CODES = [
  'BLOCKED_ADDRESS', 'DNS_FAILED', 'CONNECT_FAILED', 'TLS_FAILED', 'TIMEOUT', 'TOO_LARGE',
  'TOO_MANY_REDIRECTS', 'HTTP_STATUS', 'NETWORK', 'CANCELLED', 'INTERNAL', 'STORAGE_FAILED', 'ROBOTS_DISALLOWED'
] as const

export type ResultErrorCode = typeof RESULT_ERROR_CODES[number]
