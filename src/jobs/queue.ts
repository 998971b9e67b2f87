import { FlowProducer, Queue, type ConnectionOptions, type JobsOptions } from 'bullmq'
import { CALLBACK_QUEUE, FETCH_QUEUE } from './keys.js'
import { callbackDataSchema, laneDataSchema, type CallbackData, type LaneData } from './schemas.js'

/**
 * A job of N URLs with per-job concurrency c becomes min(c, N) BullMQ jobs, its lanes. A lane
 * fetches one URL at a time, taking the next index from the job's cursor in Redis, so at most c
 * fetches of the job run at once across every worker, and BullMQ's overhead is paid per lane,
 * not per URL. docs/design.md has the measurements behind this.
 *
 * A job with a callback is a BullMQ flow: the callback job is the parent of the lanes, so BullMQ
 * itself moves it to its queue once every lane is over, even if the worker that finished the
 * job died right after; no "finished, now enqueue the callback" step can be lost.
 */
export const laneJobOptions: JobsOptions = {
  // A lane's own failures are Redis trouble, not fetch errors (those are results); retry them.
  attempts: 8,
  backoff: { type: 'exponential', delay: 500 },
  removeOnComplete: { age: 3600, count: 10_000 },
  removeOnFail: { age: 7 * 86_400 }
}

export interface CallbackQueueOptions {
  /** CALLBACK_MAX_ATTEMPTS: deliveries tried in all. */
  attempts: number
  /** First retry delay in ms; each later one doubles, with jitter. */
  backoffMs: number
}

export function laneJobId (jobId: string, lane: number): string {
  // BullMQ refuses ':' in custom ids.
  return `${jobId}-${lane}`
}

export interface Queues {
  fetch: Queue<LaneData>
  /** The callback queue, for looking at (Bull Board): jobs reach it through `flow`. */
  callback: Queue<CallbackData>
  flow: FlowProducer
  close(): Promise<void>
}

export function createQueues (connection: ConnectionOptions, prefix: string): Queues {
  const fetch = new Queue<LaneData>(FETCH_QUEUE, { connection, prefix })
  const callback = new Queue<CallbackData>(CALLBACK_QUEUE, { connection, prefix })
  const flow = new FlowProducer({ connection, prefix })
  return {
    fetch,
    callback,
    flow,
    async close () {
      await fetch.close()
      await callback.close()
      await flow.close()
    }
  }
}

function lanes (jobId: string, count: number) {
  return Array.from({ length: count }, (_, lane) => ({
    name: 'lane',
    data: laneDataSchema.parse({ jobId, lane }),
    opts: { ...laneJobOptions, jobId: laneJobId(jobId, lane) }
  }))
}

export async function enqueueJob (queues: Queues, jobId: string, laneCount: number, callback: CallbackQueueOptions | null): Promise<void> {
  if (callback === null) {
    await queues.fetch.addBulk(lanes(jobId, laneCount))
    return
  }
  await queues.flow.add({
    name: 'callback',
    queueName: CALLBACK_QUEUE,
    data: callbackDataSchema.parse({ jobId }),
    opts: {
      jobId: `${jobId}-cb`,
      attempts: callback.attempts,
      backoff: { type: 'exponential', delay: callback.backoffMs, jitter: 0.5 },
      removeOnComplete: { age: 3600, count: 10_000 },
      removeOnFail: { age: 7 * 86_400 }
    },
    children: lanes(jobId, laneCount).map((lane) => ({
      ...lane,
      queueName: FETCH_QUEUE,
      // A lane that fails for good still lets the callback go: it reports the failed job.
      opts: { ...lane.opts, ignoreDependencyOnFailure: true }
    }))
  })
}
