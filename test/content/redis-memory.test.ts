import { Redis } from 'ioredis'
import t from 'tap'
import type { JobDocument } from '../../src/jobs/schemas.js'
import { startPrivateRedis } from '../helpers/redis-server.js'
import { startTrawl } from '../helpers/trawl.js'
import { bodyOf, sha256, startBodyServer } from './backends.js'

// Redis holds no body: a job of 500 pages of 1 MB (keepContent, the default) on a Redis of its
// own with `maxmemory 64mb` and `noeviction` (as BullMQ asks) completes, Redis grows by less
// than 10 MB, and every body reads back identical from the content store.

const PAGES = 500
const SIZE = 1_000_000

t.test('500 x 1 MB on a 64 MB Redis: completes, Redis grows < 10 MB, every body reads back', async (t) => {
  const redis = await startPrivateRedis(t, { args: ['--maxmemory', '64mb', '--maxmemory-policy', 'noeviction', '--appendfsync', 'everysec'] })
  const trawl = await startTrawl(t, { env: { REDIS_URL: redis.url, WORKER_CONCURRENCY: '20' } })
  const site = await startBodyServer(t)
  const admin = new Redis(redis.url)
  t.teardown(() => admin.disconnect())
  const usedMemory = async () => Number(/used_memory:(\d+)/.exec(await admin.info('memory'))?.[1])
  const inject = trawl.api.app.inject.bind(trawl.api.app)

  const before = await usedMemory()
  const urls = Array.from({ length: PAGES }, (_, i) => site.url(i, SIZE))
  const posted = await inject({ method: 'POST', url: '/jobs', payload: { urls, options: { concurrency: 20, retries: 0 } } })
  t.equal(posted.statusCode, 202)
  const id = (posted.json() as JobDocument).id
  const done = (await inject({ method: 'GET', url: `/jobs/${id}?wait=60&results=none` })).json() as JobDocument
  t.equal(done.state, 'completed')
  t.match(done.counts, { succeeded: PAGES, failed: 0 })
  t.equal(done.bytes, PAGES * SIZE, '500 MB downloaded')
  const grown = (await usedMemory()) - before
  t.ok(grown < 10 * 1024 * 1024, `Redis' used_memory grew by ${(grown / 1024 / 1024).toFixed(2)} MB`)

  let identical = 0
  for (let offset = 0; offset < PAGES; offset += 100) {
    const page = (await inject({ method: 'GET', url: `/jobs/${id}?offset=${offset}&limit=100` })).json() as JobDocument
    for (const item of page.results ?? []) {
      const expected = sha256(bodyOf(item.index, SIZE))
      const res = await inject({ method: 'GET', url: item.contentUrl ?? '' })
      if (item.sha256 === expected && sha256(res.rawPayload) === expected) identical++
    }
  }
  t.equal(identical, PAGES, 'every body reads back identical (sha256)')
})
