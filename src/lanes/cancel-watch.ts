import type { Logger } from 'pino'
import { FINAL_JOB_STATES } from '../jobs/schemas.js'

export interface CancelWatchDeps {
  /** The jobs with lanes running in this process, and those lanes' numbers. */
  running(): ReadonlyMap<string, ReadonlySet<number>>
  /** Current states of many jobs in one round trip; a missing job reads as null. */
  states(ids: string[]): Promise<Array<string | null>>
  /** Aborts one lane running here. */
  cancel(jobId: string, lane: number): void
  logger: Logger
  /**
   * How often the running jobs' states are read, in ms.
   * @defaultValue 250
   */
  intervalMs?: number
}

export interface CancelWatch {
  /** Stops watching; safe to call twice. */
  close(): void
}

/**
 * Cancel, on the worker's side: `DELETE /jobs/:id` only changes the job in Redis, so each worker
 * process asks, every `intervalMs`, whether the jobs it is fetching are still live, and aborts
 * the lanes of those that are not. Their fetches end at once instead of at their timeouts.
 */
export function startCancelWatch (deps: CancelWatchDeps): CancelWatch {
  const poller = setInterval(() => {
    const running = deps.running()
    const ids = [...running.keys()]
    if (ids.length === 0) return
    deps.states(ids).then((states) => {
      states.forEach((state, i) => {
        const id = ids[i]
        // A job that is over, or gone (expired), has no URL left for its lanes.
        if (id === undefined || (state !== null && !FINAL_JOB_STATES.has(state))) return
        for (const lane of running.get(id) ?? []) deps.cancel(id, lane)
      })
    }, (err: unknown) => deps.logger.debug({ err }, 'cancel poll failed'))
  }, deps.intervalMs ?? 250)
  poller.unref()
  return { close: () => clearInterval(poller) }
}
