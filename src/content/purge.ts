import type { JobStore } from '../jobs/store.js'
import type { Retention } from './retention.js'
import type { ContentStore } from './store.js'

export interface PurgeDeps {
  store: Pick<JobStore, 'finish' | 'purge'>
  content: Pick<ContentStore, 'deleteJob'>
  retention: Pick<Retention, 'forget' | 'schedule'>
}

/**
 * `DELETE /jobs/{id}?purge=true`: everything of the job goes now. In this order, so that no
 * step of it can leave a body that nothing will remove:
 * 1. the job is cancelled (if it still ran): lanes stop claiming and abort their fetches;
 * 2. its Redis keys go in one DEL: it is 404 everywhere from here on, and a lane still storing
 *    a body finds the job gone at its next step and removes the job's bodies itself
 *    (lanes/worker.ts);
 * 3. its bodies go (temporary ones and orphans included);
 * 4. its retention entry goes. Should step 3 fail, the entry is made due now and the sweeper
 *    finishes; the request fails (500), the job is already gone.
 * @returns false when there is no such job (for this tenant).
 */
export async function purgeJob (deps: PurgeDeps, id: string, tenant: string): Promise<boolean> {
  const before = await deps.store.finish(id, 'cancelled', null, tenant)
  if (before === 'missing') return false
  await deps.store.purge(id)
  try {
    await deps.content.deleteJob(id)
  } catch (err) {
    // Due now: the next sweep (with its own retries) finishes what this one could not.
    await deps.retention.schedule(id, Date.now()).catch(() => {})
    throw err
  }
  await deps.retention.forget(id)
  return true
}
