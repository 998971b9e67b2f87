import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import t from 'tap'
import { createFsContentStore } from '../../src/content/fs-store.js'
import { createRetention, retentionKeys, startSweeper } from '../../src/content/retention.js'
import type { ContentStore } from '../../src/content/store.js'
import { TEST_REDIS_URL, testPrefix } from '../helpers/redis.js'

async function setup (t: Tap.Test): Promise<{ redis: Redis, prefix: string, store: ContentStore, has: (jobId: string) => Promise<boolean> }> {
  const prefix = testPrefix(t, 'retention')
  const redis = new Redis(TEST_REDIS_URL)
  t.teardown(() => redis.quit())
  const dir = await mkdtemp(join(tmpdir(), 'trawl-retention-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const store = createFsContentStore({ dir })
  const has = async (jobId: string): Promise<boolean> => (await store.get({ jobId, index: 0 }).then((g) => { g?.body.destroy(); return g })) !== null
  return { redis, prefix, store, has }
}

declare namespace Tap { type Test = import('tap').Test }

t.test('a sweep deletes the bodies of due jobs only, and reschedules jobs that live on', async (t) => {
  const { redis, prefix, store, has } = await setup(t)
  const now = 1_000_000
  // The jobs' records: gone, expired, moved on to later, not due.
  const expiry: Record<string, number | null> = { j_gone: null, j_expired: now - 1, j_moved: now + 60_000, j_later: now + 5_000 }
  const retention = createRetention({ redis, prefix, store, expiresAtOf: async (id) => expiry[id] ?? null, batch: 2 })
  for (const id of Object.keys(expiry)) await store.put({ jobId: id, index: 0 }, [Buffer.from(id)], { contentType: null })
  await retention.schedule('j_gone', now - 10_000)
  await retention.schedule('j_expired', now - 1)
  await retention.schedule('j_moved', now - 5) // a stale schedule: the job lives on
  await retention.schedule('j_later', now + 5_000)

  t.same(await retention.sweep(now), { deleted: 2, rescheduled: 1, failed: 0 })
  t.equal(await has('j_gone'), false)
  t.equal(await has('j_expired'), false)
  t.equal(await has('j_moved'), true)
  t.equal(await has('j_later'), true)
  const set = await redis.zrange(retentionKeys(prefix).schedule, 0, -1, 'WITHSCORES')
  t.same(set, ['j_later', String(now + 5_000), 'j_moved', String(now + 60_000)])
})

t.test('a job whose deletion fails stays scheduled for the next sweep', async (t) => {
  const { redis, prefix, store } = await setup(t)
  let failing = true
  const flaky: ContentStore = { ...store, deleteJob: async (id) => { if (failing) throw new Error('disk gone'); return store.deleteJob(id) } }
  const retention = createRetention({ redis, prefix, store: flaky, expiresAtOf: async () => null, batch: 1 })
  await retention.schedule('j_a', 1)
  await retention.schedule('j_b', 2)
  t.same(await retention.sweep(10), { deleted: 0, rescheduled: 0, failed: 2 })
  failing = false
  t.same(await retention.sweep(10), { deleted: 2, rescheduled: 0, failed: 0 })
  t.equal(await redis.zcard(retentionKeys(prefix).schedule), 0)
})

t.test('sweepers in several processes: one sweeps a period, and close waits for it', async (t) => {
  const { redis, prefix, store, has } = await setup(t)
  let sweeps = 0
  let swept!: () => void
  const done = new Promise<void>((resolve) => { swept = resolve })
  const base = createRetention({ redis, prefix, store, expiresAtOf: async () => null })
  const counting = { ...base, sweep: async (now?: number) => { sweeps++; const r = await base.sweep(now); swept(); return r } }
  await store.put({ jobId: 'j_old', index: 0 }, [Buffer.from('old')], { contentType: null })
  await base.schedule('j_old', Date.now() - 1000)
  const sweepers = Array.from({ length: 3 }, () => startSweeper(counting, { redis, prefix, intervalMs: 60_000, firstDelayMs: 0 }))
  await done
  // Every sweeper has tried the lock by the time its close() resolves.
  await Promise.all(sweepers.map((s) => s.close()))
  await Promise.all(sweepers.map((s) => s.close())) // twice is fine
  t.equal(sweeps, 1, 'one sweep for the period, whichever process took the lock')
  t.equal(await has('j_old'), false)
  t.ok(await redis.pttl(retentionKeys(prefix).lock) > 0, 'the lock spaces the next sweep')
})
