/**
 * True for the errors ioredis raises when Redis cannot be reached, or cannot take the command
 * now (at its maxmemory: `OOM command not allowed`, also as the cause of an aborted MULTI, which
 * a full Redis refuses even for reads): the caller should answer 503 and try again, not treat
 * them as bugs.
 */
export function isRedisUnavailable (err: unknown): boolean {
  if (!(err instanceof Error)) return false
  if (err.name === 'MaxRetriesPerRequestError') return true
  const code = (err as { code?: unknown }).code
  if (code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'ETIMEDOUT' || code === 'EPIPE') return true
  if (/^EXECABORT/.test(err.message)) {
    const previous = (err as { previousErrors?: unknown }).previousErrors
    return Array.isArray(previous) && previous.some((e) => e instanceof Error && /OOM command not allowed/.test(e.message))
  }
  return /Stream isn't writeable|Connection is closed|Command timed out|connect ETIMEDOUT|LOADING|READONLY|OOM command not allowed/.test(err.message)
}
