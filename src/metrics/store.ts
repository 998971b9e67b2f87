import type { JobStore } from '../jobs/store.js'
import type { Metrics } from './metrics.js'

/**
 * The job store, counting what its writes do: a job created (`queued`), a job the step of its
 * last URL completed, a job cancelled or failed by `finish`, and each URL a lane reports or a
 * cancel ends. Wrapping the store (in src/roles/*) counts every transition where it is made, once
 * per service rather than once per API replica that hears of it, without a line in the routes.
 *
 * Two known limits, both rare: a URL reported twice (a lane taken over while its old worker
 * still ran) is counted twice, though the store keeps the first result only; and the URLs a
 * `failed` finish ends unfetched are not counted (the script's reply does not say how many).
 * `running` is not counted: step.lua's reply does not say which step started the job.
 */
export function meteredStore (store: JobStore, metrics: Pick<Metrics, 'jobEntered' | 'urlFinished'>): JobStore {
  return {
    ...store,
    async create (job, ro) {
      const record = await store.create(job, ro)
      metrics.jobEntered('queued')
      return record
    },
    async step (id, tenant, lane, finished, claim, now) {
      const reply = await store.step(id, tenant, lane, finished, claim, now)
      // A parked URL is not finished: it waits for its host.
      if (finished !== null && 'result' in finished) metrics.urlFinished(finished.result.state === 'succeeded' ? 'succeeded' : 'failed', finished.result.error?.code ?? null)
      if (reply.kind === 'over' && reply.completed === true) metrics.jobEntered('completed')
      return reply
    },
    async finish (id, state, error, tenant, now) {
      const before = await store.finish(id, state, error, tenant, now)
      if (before !== 'queued' && before !== 'running') return before
      metrics.jobEntered(state)
      if (state === 'cancelled') await countCancelled(store, metrics, id)
      return before
    }
  }
}

// The cancelled counter is written by the cancel alone: it is the number of URLs it ended.
async function countCancelled (store: JobStore, metrics: Pick<Metrics, 'urlFinished'>, id: string): Promise<void> {
  const record = await store.readRecord(id, { withResults: false, offset: 0, limit: 1 }).catch(() => null)
  const n = record?.meta.cancelled ?? 0
  if (n > 0) metrics.urlFinished('cancelled', 'CANCELLED', n)
}
