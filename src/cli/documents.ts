import type { z } from 'zod'
import { jobDocumentSchema, jobSummarySchema, resultItemSchema, type JobDocument, type JobSummary, type ResultItem } from '../jobs/schemas.js'
import { ProtocolError } from './errors.js'

/**
 * Checks what the server sent against the contract's own schemas, so that a wrong `--server`
 * ends in one clear message instead of a TypeError further on. The value is returned as sent
 * (fields this client does not know survive into `--json`).
 */
function check<T> (schema: z.ZodType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    const where = issue && issue.path.length > 0 ? ` at /${issue.path.join('/')}` : ''
    throw new ProtocolError(`the server's answer for ${what} is not a trawl document${where}: ${issue?.message ?? 'invalid'}`)
  }
  return value as T
}

export function checkDocument (value: unknown, what: string): JobDocument {
  return check(jobDocumentSchema, value, what)
}

export function checkSummary (value: unknown, what: string): JobSummary {
  return check(jobSummarySchema, value, what)
}

export function checkResult (value: unknown, what: string): ResultItem {
  return check(resultItemSchema, value, what)
}

export type { JobDocument, JobSummary, ResultItem }
