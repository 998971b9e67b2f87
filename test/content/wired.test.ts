import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { contentStoreOptions, createContentStore } from '../../src/content/index.js'
import { checkBody } from '../../src/content/digest.js'
import { MANIFEST } from '../../src/content/archive.js'
import { bodyFileName } from '../../src/content/names.js'
import { createRetention, retentionKeys } from '../../src/content/retention.js'
import { jobKeys } from '../../src/jobs/keys.js'
import type { JobDocument, ResultItem } from '../../src/jobs/schemas.js'
import { eventually } from '../helpers/eventually.js'
import { startGateServer } from '../helpers/gate-server.js'
import { TEST_REDIS_URL } from '../helpers/redis.js'
import { startTrawl, type TestTrawl } from '../helpers/trawl.js'
import { BACKENDS, bodyOf, sha256, startBodyServer, type Backend } from './backends.js'
import { readZip } from './zip.js'

// The content store wired into the service, end to end, on both backends: bodies stream into
// the store and never into Redis, the content, NDJSON and archive routes read them back, a
// store that fails ends URLs STORAGE_FAILED, and purge and expiry leave nothing behind.

const run = promisify(execFile)

async function service (t: Test, name: keyof typeof BACKENDS): Promise<{ backend: Backend, trawl: TestTrawl, redis: Redis }> {
  const backend = await BACKENDS[name](t)
  const trawl = await startTrawl(t, { env: backend.env })
  const redis = new Redis(TEST_REDIS_URL)
  t.teardown(() => redis.disconnect())
  return { backend, trawl, redis }
}

async function runJob (trawl: TestTrawl, urls: string[], options: Record<string, unknown> = {}): Promise<JobDocument> {
  const inject = trawl.api.app.inject.bind(trawl.api.app)
  const posted = await inject({ method: 'POST', url: '/jobs', payload: { urls, options: { retries: 0, concurrency: 4, maxBytes: 32 * 1024 * 1024, ...options } } })
  const id = (posted.json() as JobDocument).id
  const done = await inject({ method: 'GET', url: `/jobs/${id}?wait=30&limit=1000` })
  return done.json() as JobDocument
}

for (const name of ['fs', 's3'] as const) {
  t.test(`${name}: bodies go to the store, never to Redis, and read back whole`, async (t) => {
    const { backend, trawl, redis } = await service(t, name)
    const site = await startBodyServer(t)
    // 6 MB passes the s3 store's 5 MiB part: a multipart upload.
    const sizes = [0, 1, 10_000, 300_000, 2_000_000, 6_000_000]
    const urls = [...sizes.map((size, i) => site.url(i, size)), 'http://127.0.0.1:9/refused']
    const done = await runJob(trawl, urls)
    t.equal(done.state, 'completed')
    const items = done.results ?? []
    const inject = trawl.api.app.inject.bind(trawl.api.app)

    const keys = await redis.keys(`${trawl.prefix}:job:{${done.id}}:*`)
    t.notOk(keys.some((k) => k.endsWith(':content')), 'no content hash in Redis')
    const resultsBytes = Number(await redis.memory('USAGE', jobKeys(trawl.prefix, done.id).results))
    t.ok(resultsBytes < 16 * 1024, `the results hash holds records, not 8 MB of bodies (${resultsBytes} bytes)`)

    for (const [i, size] of sizes.entries()) {
      const expected = bodyOf(i, size)
      const item = items[i]
      t.match(item, { state: 'succeeded', bytes: size, sha256: sha256(expected) }, `result ${i}: its sha256`)
      const res = await inject({ method: 'GET', url: item?.contentUrl ?? '' })
      t.equal(res.statusCode, 200)
      t.ok(res.rawPayload.equals(expected), `body ${i} (${size} bytes) reads back identical`)
      t.equal(res.headers.etag, `"${sha256(expected)}"`)
      t.equal(Number(res.headers['content-length']), size)
    }
    t.match(items[6], { state: 'failed', sha256: null, contentUrl: null })
    t.same(await backend.holdings(done.id), sizes.map((_, i) => name === 'fs' ? String(i) : `bodies/${done.id}/${i}`).sort(),
      'the store holds each body under its index, and nothing else (no temporary file, no upload)')

    const lines = await inject({ method: 'GET', url: `/jobs/${done.id}/results` })
    t.equal(lines.headers['content-type'], 'application/x-ndjson')
    t.same(lines.body.trimEnd().split('\n').map((l) => JSON.parse(l) as ResultItem), items, 'NDJSON: every item, in input order')

    const dir = await mkdtemp(join(tmpdir(), 'trawl-wired-zip-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    const zipPath = join(dir, 'job.zip')
    await writeFile(zipPath, (await inject({ method: 'GET', url: `/jobs/${done.id}/archive` })).rawPayload)
    await run('unzip', ['-t', '-q', zipPath])
    await run('unzip', ['-q', zipPath, '-d', join(dir, 'out')])
    const entries = await readZip(zipPath)
    for (const [i, size] of sizes.entries()) {
      const entry = bodyFileName(i, urls.length, urls[i] ?? '', 'text/plain')
      t.ok(entries.get(entry)?.equals(bodyOf(i, size)), `yauzl: ${entry}`)
      t.ok((await readFile(join(dir, 'out', entry))).equals(bodyOf(i, size)), `unzip: ${entry}`)
    }
    const manifest = (await readFile(join(dir, 'out', MANIFEST), 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l) as ResultItem & { entry: string | null })
    t.same(manifest.map((m) => m.entry), [...sizes.map((_, i) => bodyFileName(i, urls.length, urls[i] ?? '', 'text/plain')), null])
    t.same(manifest.map(({ entry: _e, ...item }) => item), items, 'results.ndjson holds every result item')

    // A reader that checks what it got against the result's sha256 (content/digest.ts) sees a
    // body that was cut short or changed in the store.
    const big = items[4] as ResultItem
    const whole = bodyOf(4, 2_000_000)
    await backend.tamper(done.id, 4, whole.subarray(0, 1_000_000))
    const truncated = await inject({ method: 'GET', url: big.contentUrl ?? '' })
    t.match(await checkBody(Readable.from([truncated.rawPayload]), { sha256: big.sha256 ?? '', bytes: big.bytes }), { ok: false, actual: { bytes: 1_000_000 } }, 'a truncated body is detected')
    const flipped = Buffer.from(whole)
    flipped[1234] = (flipped[1234] ?? 0) ^ 0xff
    await backend.tamper(done.id, 4, flipped)
    const corrupted = await inject({ method: 'GET', url: big.contentUrl ?? '' })
    t.equal(corrupted.rawPayload.length, whole.length)
    t.match(await checkBody(Readable.from([corrupted.rawPayload]), { sha256: big.sha256 ?? '', bytes: big.bytes }), { ok: false }, 'a corrupted body is detected')
  })

  t.test(`${name}: a store that cannot write ends URLs STORAGE_FAILED and the job goes on`, async (t) => {
    const { backend, trawl } = await service(t, name)
    const site = await startBodyServer(t)
    const gate = await startGateServer(300)
    t.teardown(gate.close)
    const inject = trawl.api.app.inject.bind(trawl.api.app)
    const urls = [site.url(0, 1000), gate.url('/hold/1'), site.url(2, 1000), site.url(3, 1000)]
    const posted = await inject({ method: 'POST', url: '/jobs', payload: { urls, options: { concurrency: 1, retries: 2, timeoutMs: 20_000 } } })
    const id = (posted.json() as JobDocument).id
    // The lane has stored URL 0 and is waiting on URL 1: the store breaks now.
    await gate.untilWaiting(1)
    await backend.breakWrites(id)
    gate.open()
    const done = (await inject({ method: 'GET', url: `/jobs/${id}?wait=60` })).json() as JobDocument
    t.equal(done.state, 'completed', 'the job goes on to its end')
    t.match(done.counts, { succeeded: 1, failed: 3 })
    for (const item of done.results?.slice(1) ?? []) {
      t.match(item, { state: 'failed', attempts: 1, sha256: null, contentUrl: null, error: { code: 'STORAGE_FAILED', message: new RegExp(`${name} content store`) } }, `URL ${item.index}: STORAGE_FAILED, not retried`)
      t.notMatch(item.error?.message ?? '', /S3RVER|secret/i, 'no credential in the message')
    }
  })

  t.test(`${name}: purge, and expiry, leave nothing of the job in the store`, async (t) => {
    const { backend, trawl, redis } = await service(t, name)
    const site = await startBodyServer(t)
    const inject = trawl.api.app.inject.bind(trawl.api.app)
    const schedule = retentionKeys(trawl.prefix).schedule

    const purged = await runJob(trawl, [site.url(0, 1000), site.url(1, 100_000)])
    t.ok(Number(await redis.zscore(schedule, purged.id)) >= Date.parse(purged.createdAt), 'scheduled for retention at submit')
    t.equal((await backend.holdings(purged.id)).length, 2)
    t.equal((await inject({ method: 'DELETE', url: `/jobs/${purged.id}?purge=true` })).statusCode, 204)
    t.same(await backend.holdings(purged.id), [], 'purge: the store holds nothing of the job')
    t.equal(await redis.zscore(schedule, purged.id), null, 'and its retention entry is gone')
    t.equal((await inject({ method: 'GET', url: `/jobs/${purged.id}/results/0/content` })).statusCode, 404)
    t.same(await redis.keys(`${trawl.prefix}:job:{${purged.id}}:*`), [], 'nor does Redis')

    const expiring = await runJob(trawl, [site.url(2, 1000), site.url(3, 1000)])
    const store = createContentStore(contentStoreOptions(trawl.config))
    t.teardown(() => store.close())
    const expiresAtOf = async (jobId: string) => { const v = await redis.hget(jobKeys(trawl.prefix, jobId).meta, 'expiresAt'); return v === null ? null : Number(v) }
    const retention = createRetention({ redis, prefix: trawl.prefix, store, expiresAtOf })
    t.match(await retention.sweep(), { deleted: 0 }, 'nothing is due yet')
    t.match(await retention.sweep(Date.parse(expiring.expiresAt) + 1), { deleted: 1 }, 'once the job has expired, the sweep deletes its bodies')
    t.same(await backend.holdings(expiring.id), [])
    const gone = await inject({ method: 'GET', url: `/jobs/${expiring.id}/results/0/content` })
    t.equal(gone.json().code, 'CONTENT_NOT_FOUND', 'its content answers 404')

    // A body being written when the job is purged: nothing of it is left once the lane stops.
    const posted = await inject({ method: 'POST', url: '/jobs', payload: { urls: [site.url(4, 3_000_000, 'half')] } })
    const running = (posted.json() as JobDocument).id
    await site.halfSent()
    t.equal((await inject({ method: 'DELETE', url: `/jobs/${running}?purge=true` })).statusCode, 204)
    await eventually(async () => (await backend.holdings(running)).length === 0, { what: 'the half-written body is gone', timeoutMs: 10_000 })
    t.equal((await inject({ method: 'GET', url: `/jobs/${running}` })).statusCode, 404)
  })
}

t.test('a submission whose retention cannot be scheduled is refused and leaves no job', async (t) => {
  const { trawl, redis } = await service(t, 'fs')
  const inject = trawl.api.app.inject.bind(trawl.api.app)
  // Not a sorted set: the schedule's ZADD fails with WRONGTYPE, while the job's own writes,
  // sent with it, succeed.
  await redis.set(retentionKeys(trawl.prefix).schedule, 'x')
  t.teardown(() => redis.del(retentionKeys(trawl.prefix).schedule))
  const posted = await inject({ method: 'POST', url: '/jobs', payload: { urls: ['http://127.0.0.1:9/a'] } })
  t.equal(posted.statusCode, 500, 'an internal problem, not a job')
  t.same(await redis.keys(`${trawl.prefix}:job:*`), [], 'no key of a job is left in Redis')
  t.same((await inject({ method: 'GET', url: '/jobs' })).json().jobs, [], 'nor in the listing')
})
