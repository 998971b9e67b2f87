import { createHash } from 'node:crypto'
import type { Redis } from 'ioredis'
import { idempotencyKey } from '../jobs/keys.js'
import { loadScripts, runScript } from '../redis/scripts.js'

/** How long a claimed Idempotency-Key waits for its job to be created, in ms. */
export const IDEMPOTENCY_LEASE_MS = 60_000

/** Someone's hold on a key: a lease while its job is being created, then the job it is bound to. */
export interface KeyClaim {
  state: 'pending' | 'bound'
  jobId: string
  /** requestHash of the request that claimed the key. */
  requestHash: string
}

/**
 * Idempotency-Keys of a tenant, one Redis string each (`<state> <job id> <request hash>`),
 * stored under the SHA-256 of the key so any visible ASCII is a safe key name.
 */
export interface IdempotencyKeys {
  /**
   * Takes the key for `jobId` as a lease of IDEMPOTENCY_LEASE_MS unless someone holds it.
   * Atomic (tenants/claim-key.lua): of two racing requests, one claims and one sees its claim.
   * A request that dies before bind() frees the key when the lease lapses.
   * @returns null when this call claimed the key, else the claim that holds it (unchanged).
   */
  claim(tenant: string, keyDigest: string, jobId: string, requestHash: string): Promise<KeyClaim | null>
  /**
   * The job exists: the key now answers with it for twice the job TTL (it outlives the job, so a
   * late retry is told the job expired rather than starting a new one). Only if the key is still
   * held (SET XX): a lapsed lease is not brought back.
   */
  bind(tenant: string, keyDigest: string, jobId: string, requestHash: string): Promise<void>
  /** Frees the key (DEL), whoever holds it. */
  release(tenant: string, keyDigest: string): Promise<void>
}

/** The name a key is stored under. */
export function keyDigest (key: string): string {
  return createHash('sha256').update(key).digest('base64url')
}

export function createIdempotencyKeys (redis: Redis, opts: { prefix: string, ttlSeconds: number }): IdempotencyKeys {
  loadScripts(redis)
  const ttlMs = opts.ttlSeconds * 1000
  const keyOf = (tenant: string, digest: string) => idempotencyKey(opts.prefix, tenant, digest)
  return {
    async claim (tenant, digest, jobId, requestHash) {
      const existing = await runScript(redis, 'trawlClaimKey', { key: keyOf(tenant, digest) }, { value: `pending ${jobId} ${requestHash}`, ttl: IDEMPOTENCY_LEASE_MS })
      if (existing === null) return null
      const [state = '', boundId = '', boundHash = ''] = existing.split(' ')
      return { state: state === 'bound' ? 'bound' : 'pending', jobId: boundId, requestHash: boundHash }
    },
    async bind (tenant, digest, jobId, requestHash) {
      await redis.set(keyOf(tenant, digest), `bound ${jobId} ${requestHash}`, 'PX', 2 * ttlMs, 'XX')
    },
    async release (tenant, digest) {
      await redis.del(keyOf(tenant, digest))
    }
  }
}
