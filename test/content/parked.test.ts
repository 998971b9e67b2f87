import { createServer } from 'node:http'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import type { JobDocument } from '../../src/jobs/schemas.js'
import { eventually } from '../helpers/eventually.js'
import { TEST_REDIS_URL } from '../helpers/redis.js'
import { startTrawl } from '../helpers/trawl.js'
import { BACKENDS, bodyOf, sha256 } from './backends.js'

// The content store with the host rules: URLs parked behind a full host or a pause keep the body
// of the fetch that finally succeeds, and a purge while lanes park leaves nothing behind.

interface Site {
  url(seed: number, size: number, path?: string): string
  /** Answers being written now. */
  inFlight(): number
}

/** `/<seed>/<size>` after `delayMs`; `/pause/<seed>/<size>` answers 429 (Retry-After: 1) the first time. */
async function startSite (t: Test, delayMs: number): Promise<Site> {
  const paused = new Set<string>()
  let inFlight = 0
  const server = createServer((req, res) => {
    inFlight++
    res.once('close', () => { inFlight-- })
    const parts = (req.url ?? '').split('/').filter(Boolean)
    const [seed, size] = parts.slice(-2).map(Number) as [number, number]
    if (parts[0] === 'pause' && !paused.has(req.url ?? '')) {
      paused.add(req.url ?? '')
      res.writeHead(429, { 'retry-after': '1' }).end()
      return
    }
    const body = bodyOf(seed, size)
    setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length }).end(body), delayMs)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  return {
    url: (seed, size, path) => `http://127.0.0.1:${port}/${path === undefined ? '' : `${path}/`}${seed}/${size}`,
    inFlight: () => inFlight
  }
}

t.test('URLs parked on a full host, and one parked by a 429, keep their bodies and sha256', async (t) => {
  const backend = await BACKENDS.fs(t)
  const trawl = await startTrawl(t, { env: backend.env })
  const { url } = await startSite(t, 30)
  const inject = trawl.api.app.inject.bind(trawl.api.app)
  const urls = [url(0, 5000, 'pause'), ...Array.from({ length: 5 }, (_, i) => url(i + 1, 1000 * (i + 1)))]
  // Six lanes, one slot on the host: five URLs park at first, and the 429 parks its URL again.
  const posted = await inject({ method: 'POST', url: '/jobs', payload: { urls, options: { retries: 0, concurrency: 6, hostConcurrency: 1 } } })
  const id = (posted.json() as JobDocument).id
  const done = (await inject({ method: 'GET', url: `/jobs/${id}?wait=30` })).json() as JobDocument
  t.equal(done.state, 'completed')
  for (const [i, item] of (done.results ?? []).entries()) {
    const expected = bodyOf(i, i === 0 ? 5000 : 1000 * i)
    t.match(item, { state: 'succeeded', sha256: sha256(expected), waitingFor: null }, `result ${i}: its sha256`)
    const res = await inject({ method: 'GET', url: item.contentUrl ?? '' })
    t.ok(res.rawPayload.equals(expected), `body ${i} reads back whole`)
  }
  t.equal(done.results?.[0]?.attempts, 2, 'the paused URL: the 429 and the 200')
  t.same(await backend.holdings(id), ['0', '1', '2', '3', '4', '5'])
})

t.test('a purge while lanes park on a full host leaves nothing of the job in Redis or the store', async (t) => {
  const backend = await BACKENDS.fs(t)
  const trawl = await startTrawl(t, { env: backend.env })
  const redis = new Redis(TEST_REDIS_URL)
  t.teardown(() => redis.disconnect())
  const site = await startSite(t, 150)
  const url = site.url
  const inject = trawl.api.app.inject.bind(trawl.api.app)
  const urls = Array.from({ length: 12 }, (_, i) => url(i, 2000))
  const posted = await inject({ method: 'POST', url: '/jobs', payload: { urls, options: { retries: 0, concurrency: 6, hostConcurrency: 1 } } })
  const id = (posted.json() as JobDocument).id
  const parked = `${trawl.prefix}:job:{${id}}:parked`
  await eventually(async () => (await redis.hlen(parked)) > 0 && (await backend.holdings(id)).length > 0, { what: 'URLs parked and a body stored', timeoutMs: 10_000 })
  t.equal((await inject({ method: 'DELETE', url: `/jobs/${id}?purge=true` })).statusCode, 204)
  // The fetch in flight ends, its body is stored and its step finds the job gone: the body goes
  // too, and neither that step nor the parking lanes' write anything of the job again.
  t.ok(site.inFlight() > 0, 'a fetch was in flight at the purge')
  await eventually(() => site.inFlight() === 0, { what: 'the fetch in flight ended', timeoutMs: 10_000 })
  await eventually(async () => (await backend.holdings(id)).length === 0, { what: 'the store holds nothing of the job', timeoutMs: 10_000 })
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.same(await redis.keys(`${trawl.prefix}:job:{${id}}:*`), [], 'Redis holds nothing of the job')
  t.same(await backend.holdings(id), [], 'nor does the store')
  t.equal((await inject({ method: 'GET', url: `/jobs/${id}` })).statusCode, 404)
})
