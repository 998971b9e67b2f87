/**
 * Key names of one job. The `{id}` hash tag keeps every key of a job in one Redis Cluster slot,
 * so each Lua script touches a single slot.
 */
export interface JobKeys {
  /** hash: state, timestamps, counters, options */
  meta: string
  /** list: the URLs in input order */
  urls: string
  /** hash: index -> final result (JSON); bodies live in the content store (src/content/) */
  results: string
  /** hash: lane -> index the lane is fetching; survives the lane's worker dying */
  held: string
  /** hash: index -> parked-URL JSON, for URLs waiting for their host (full or paused) */
  parked: string
  /** zset: `<host> <index>` of the parked URLs, for claims by host (lanes/step.lua) */
  parkq: string
  /** stream: the job's history (state and result events), read by SSE clients and callbacks */
  events: string
  /** string: the callback body, fixed at the first delivery so every retry sends the same bytes */
  callbackBody: string
}

export function jobKeys (prefix: string, id: string): JobKeys {
  const base = `${prefix}:job:{${id}}`
  return {
    meta: `${base}:meta`,
    urls: `${base}:urls`,
    results: `${base}:results`,
    held: `${base}:held`,
    parked: `${base}:parked`,
    parkq: `${base}:parkq`,
    events: `${base}:events`,
    callbackBody: `${base}:callback`
  }
}

/** Every key of one job, e.g. to delete them. */
export function keyList (keys: JobKeys): string[] {
  return [keys.meta, keys.urls, keys.results, keys.held, keys.parked, keys.parkq, keys.events, keys.callbackBody]
}

/** string: how many URLs the tenant has accepted and not yet finished, across its jobs */
export function tenantPendingKey (prefix: string, tenant: string): string {
  return `${prefix}:tenant:${tenant}:pending`
}

/**
 * sorted set: the ids of the tenant's jobs, scored by createdAt (ms), for `GET /jobs`. Not in a
 * job's hash slot: written beside the job record, not in the same transaction (jobs/listing.ts).
 */
export function tenantJobsKey (prefix: string, tenant: string): string {
  return `${prefix}:tenant:${tenant}:jobs`
}

/** string: `<job id> <request hash>` for an Idempotency-Key of a tenant */
export function idempotencyKey (prefix: string, tenant: string, keyDigest: string): string {
  return `${prefix}:tenant:${tenant}:idem:${keyDigest}`
}

/** Pub/sub channel that carries the id of every job reaching a final state. */
export function finishedChannel (prefix: string): string {
  return `${prefix}:finished`
}

export const FETCH_QUEUE = 'fetch'
export const CALLBACK_QUEUE = 'callback'
