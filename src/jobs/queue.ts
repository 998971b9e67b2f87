import { Queue, type ConnectionOptions, type JobsOptions } from 'bullmq'
import { FETCH_QUEUE } from './keys.js'
import { laneDataSchema, type LaneData } from './schemas.js'

/**
 * A job of N URLs with per-job concurrency c becomes min(c, N) BullMQ jobs, its lanes. A lane
 * fetches one URL at a time, taking the next index from the job's cursor in Redis, so at most c
 * fetches of the job run at once across every worker, and BullMQ's overhead is paid per lane,
 * not per URL. docs/design.md has the measurements behind this.
 */
export const laneJobOptions: JobsOptions = {
  // A lane's own failures are Redis trouble, not fetch errors (those are results); retry them.
  attempts: 8,
  backoff: { type: 'exponential', delay: 500 },
  removeOnComplete: { age: 3600, count: 10_000 },
  removeOnFail: { age: 7 * 86_400 }
}

export function laneJobId (jobId: string, lane: number): string {
  // BullMQ refuses ':' in custom ids.
  return `${jobId}-${lane}`
}

export function createFetchQueue (connection: ConnectionOptions, prefix: string): Queue<LaneData> {
  return new Queue<LaneData>(FETCH_QUEUE, { connection, prefix })
}

export async function enqueueLanes (queue: Queue<LaneData>, jobId: string, lanes: number): Promise<void> {
  const jobs = []
  for (let lane = 0; lane < lanes; lane++) {
    const data = laneDataSchema.parse({ jobId, lane })
    jobs.push({ name: 'lane', data, opts: { ...laneJobOptions, jobId: laneJobId(jobId, lane) } })
  }
  await queue.addBulk(jobs)
}
