import { once } from 'node:events'
import t from 'tap'
import type { JobDocument } from '../../src/jobs/schemas.js'
import { eventually } from '../helpers/eventually.js'
import { testPrefix } from '../helpers/redis.js'
import { spawnTrawl, startTrawl, testEnv, waitForLog } from '../helpers/trawl.js'
import { BACKENDS, bodyOf, sha256, startBodyServer } from './backends.js'

// A worker killed with kill -9 while it writes a body (a real worker process; the target sends
// half of a 12 MB body and stalls) leaves no partial body behind any result, and the next
// worker fetches the URL again, whole. On s3 the half is past one 5 MiB part: a multipart upload.

const SIZE = 12_000_000

for (const name of ['fs', 's3'] as const) {
  t.test(`${name}: kill -9 mid-write leaves no partial body; the next worker fetches the URL again`, async (t) => {
    const backend = await BACKENDS[name](t)
    const prefix = testPrefix(t)
    const env = testEnv(prefix, { ...backend.env, LOG_LEVEL: 'info', WORKER_LOCK_MS: '1000', WORKER_CONCURRENCY: '4' })
    const { api } = await startTrawl(t, { worker: false, prefix, env: backend.env })
    const inject = api.app.inject.bind(api.app)
    const site = await startBodyServer(t)

    const first = spawnTrawl(t, 'worker', env)
    await waitForLog(first, /worker started/)
    const halfSent = site.halfSent()
    const posted = await inject({ method: 'POST', url: '/jobs', payload: { urls: [site.url(7, SIZE, 'half')], options: { retries: 0, maxBytes: 16_000_000, timeoutMs: 60_000 } } })
    const id = (posted.json() as JobDocument).id
    await halfSent
    const partial = name === 'fs' ? /^\.tmp-0-/ : /^upload:/
    await eventually(async () => (await backend.holdings(id)).some((h) => partial.test(h)), { what: 'the body is being written', timeoutMs: 10_000 })

    first.kill('SIGKILL')
    await once(first, 'exit')
    const visible = (h: string) => h === '0' || h === `bodies/${id}/0`
    t.notOk((await backend.holdings(id)).some(visible), 'no body is visible under the key')
    const mid = (await inject({ method: 'GET', url: `/jobs/${id}` })).json() as JobDocument
    t.match(mid.results?.[0], { state: 'running', sha256: null, contentUrl: null }, 'the URL has no result yet: the dead worker still holds it')
    t.equal((await inject({ method: 'GET', url: `/jobs/${id}/results/0/content` })).json().code, 'CONTENT_NOT_FOUND')

    const second = spawnTrawl(t, 'worker', env)
    await waitForLog(second, /worker started/)
    const done = (await inject({ method: 'GET', url: `/jobs/${id}?wait=30` })).json() as JobDocument
    t.equal(done.state, 'completed')
    const expected = sha256(bodyOf(7, SIZE))
    t.match(done.results?.[0], { state: 'succeeded', bytes: SIZE, sha256: expected }, 'fetched again, whole')
    const content = await inject({ method: 'GET', url: `/jobs/${id}/results/0/content` })
    t.equal(sha256(content.rawPayload), expected, 'the stored body is the whole body')

    t.equal((await inject({ method: 'DELETE', url: `/jobs/${id}?purge=true` })).statusCode, 204)
    t.same(await backend.holdings(id), [], 'a purge removes the dead worker\'s leftovers too')
  })
}
