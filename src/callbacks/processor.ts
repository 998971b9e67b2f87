import type { Delivery } from './deliver.js'
import { FINAL_JOB_STATES, type CallbackData, type JobDocument } from '../jobs/schemas.js'

export interface CallbackDeps {
  read(jobId: string): Promise<JobDocument | null>
  callbackBody(jobId: string, body: string): Promise<string>
  record(jobId: string, r: { state: 'pending' | 'delivered' | 'failed', attempts: number, lastStatus: number | null, lastError: string | null }): Promise<void>
  deliver(url: string, webhookId: string, body: string): Promise<Delivery>
  maxAttempts: number
}

/** What became of one attempt: `retry` asks the queue to try again after its backoff. */
export type CallbackOutcome = 'delivered' | 'failed' | 'retry' | 'skipped'

/**
 * One delivery attempt of a job's callback (like `add_done_callback`): the final job document,
 * without results, POSTed and signed. `attempt` counts from 1. The job's own state never changes;
 * only its `callback` block does.
 */
export async function runCallback (data: CallbackData, attempt: number, deps: CallbackDeps): Promise<CallbackOutcome> {
  const doc = await deps.read(data.jobId)
  if (doc === null || doc.callback === null || doc.callback.state !== 'pending') return 'skipped'
  if (!FINAL_JOB_STATES.has(doc.state)) throw new Error(`job ${data.jobId} is ${doc.state}, not finished`)
  const { results: _results, page: _page, ...summary } = doc
  const body = await deps.callbackBody(data.jobId, JSON.stringify(summary))
  const d = await deps.deliver(doc.callback.url, data.jobId, body)
  const state = d.ok ? 'delivered' : (!d.retryable || attempt >= deps.maxAttempts ? 'failed' : 'pending')
  await deps.record(data.jobId, { state, attempts: attempt, lastStatus: d.status, lastError: d.error })
  return state === 'pending' ? 'retry' : state
}
