import type { Redis } from 'ioredis'
import { tenantPendingKey } from '../jobs/keys.js'
import { loadScripts, runScript } from '../redis/scripts.js'

/**
 * A tenant's count of pending URLs (MAX_PENDING_URLS_PER_TENANT), one Redis string per tenant.
 * Every admitted URL is counted down exactly once: when its result is written (lanes/step.lua)
 * or when its job ends without it (jobs/finish.lua), or by unadmit() when its job was never
 * created.
 */
export interface Admission {
  /**
   * Adds `n` to the tenant's count if the sum stays within `max`; else changes nothing.
   * Atomic (tenants/admit.lua): two submissions racing for the last room cannot both get it.
   * @returns whether the URLs were admitted.
   */
  admit(tenant: string, n: number, max: number): Promise<boolean>
  /** Takes `n` back off the count (one DECRBY), for URLs admitted for a job that was not created. */
  unadmit(tenant: string, n: number): Promise<void>
}

export function createAdmission (redis: Redis, opts: { prefix: string }): Admission {
  loadScripts(redis)
  const pendingKey = (tenant: string) => tenantPendingKey(opts.prefix, tenant)
  return {
    async admit (tenant, n, max) {
      return (await runScript(redis, 'trawlAdmit', { pending: pendingKey(tenant) }, { n, max })) >= 0
    },
    async unadmit (tenant, n) {
      await redis.decrby(pendingKey(tenant), n)
    }
  }
}
