import { z } from 'zod'

/**
 * The error catalogue: every error the API answers with has a stable `code` that clients branch
 * on, an HTTP status, and a title. The error handler turns them into RFC 9457 problems; the
 * text of a 5xx never leaves the process.
 */

export const problemCatalogue = {
  VALIDATION_FAILED: { status: 400, title: 'The request is not valid' },
  UNAUTHORIZED: { status: 401, title: 'Authentication is required' },
  NOT_FOUND: { status: 404, title: 'No such resource' },
  JOB_NOT_FOUND: { status: 404, title: 'No such job' },
  CONTENT_NOT_FOUND: { status: 404, title: 'No stored content for this result' },
  METHOD_NOT_ALLOWED: { status: 405, title: 'Method not allowed' },
  JOB_FINISHED: { status: 409, title: 'The job has already finished' },
  IDEMPOTENCY_IN_PROGRESS: { status: 409, title: 'A request with this Idempotency-Key is still being processed' },
  PAYLOAD_TOO_LARGE: { status: 413, title: 'The request body is too large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'The request body must be JSON' },
  IDEMPOTENCY_KEY_REUSED: { status: 422, title: 'This Idempotency-Key was used with a different request' },
  RATE_LIMITED: { status: 429, title: 'Too many requests' },
  TOO_MANY_PENDING_URLS: { status: 429, title: 'Too many URLs waiting for this tenant' },
  INTERNAL: { status: 500, title: 'Internal error' },
  UNAVAILABLE: { status: 503, title: 'The service is unavailable' }
} as const satisfies Record<string, { status: number, title: string }>

export type ProblemCode = keyof typeof problemCatalogue

export interface FieldError {
  /** JSON pointer into the request, e.g. `/urls/3`. */
  path: string
  message: string
}

export class TrawlError extends Error {
  readonly statusCode: number
  /** Seconds after which the client may try again; sent as `Retry-After`. */
  readonly retryAfter: number | undefined
  constructor (readonly code: ProblemCode, message: string, options?: { cause?: unknown, retryAfter?: number }) {
    super(message, options)
    this.name = 'TrawlError'
    this.statusCode = problemCatalogue[code].status
    this.retryAfter = options?.retryAfter
  }
}

export class ValidationFailedError extends TrawlError {
  constructor (readonly errors: FieldError[], message = 'The request does not match the contract; see errors.') {
    super('VALIDATION_FAILED', message)
  }
}

export class JobNotFoundError extends TrawlError {
  constructor (id: string) { super('JOB_NOT_FOUND', `No job with id ${JSON.stringify(id)} exists, or it has expired.`) }
}

export class JobFinishedError extends TrawlError {
  constructor (id: string, state: string) { super('JOB_FINISHED', `Job ${id} has already finished (${state}); it was left as it is.`) }
}

export class ContentNotFoundError extends TrawlError {
  constructor (message: string) { super('CONTENT_NOT_FOUND', message) }
}

export class UnauthorizedError extends TrawlError {
  constructor (message: string) { super('UNAUTHORIZED', message) }
}

export class UnavailableError extends TrawlError {
  constructor (message = 'Redis does not answer; try again shortly.', options?: { cause?: unknown }) {
    super('UNAVAILABLE', message, options)
  }
}

/** The problem type URI for a code: stable, and the same in openapi.yaml. */
export function problemType (code: ProblemCode): string {
  return `urn:trawl:problem:${code.toLowerCase().replaceAll('_', '-')}`
}

/** An RFC 9457 problem as the API answers it: the one declaration of its shape (routes' schemas and the error handler use it). */
export const problemSchema = z.object({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
  code: z.enum(Object.keys(problemCatalogue) as [ProblemCode, ...ProblemCode[]]),
  instance: z.string().optional(),
  errors: z.array(z.object({ path: z.string(), message: z.string() })).optional()
})
export type Problem = z.infer<typeof problemSchema>
