/**
 * True for the errors ioredis raises when Redis cannot be reached: the caller should answer 503
 * and try again, not treat them as bugs.
 */
export function isRedisUnavailable (err: unknown): boolean {
  if (!(err instanceof Error)) return false
  if (err.name === 'MaxRetriesPerRequestError') return true
  const code = (err as { code?: unknown }).code
  if (code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'ETIMEDOUT' || code === 'EPIPE') return true
  return /Stream isn't writeable|Connection is closed|Command timed out|connect ETIMEDOUT|LOADING|READONLY/.test(err.message)
}
