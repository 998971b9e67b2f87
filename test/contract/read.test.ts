import type { Test } from 'tap'
import type { JobDocument } from '../../src/jobs/schemas.js'
import { check, contractTest } from '../helpers/contract/check.js'
import { answerOf, httpClient, json, MISSING_ID, startContractService } from '../helpers/contract/service.js'
import { startTrawl } from '../helpers/trawl.js'

// GET and HEAD /jobs/{id}, and the probes, against openapi.yaml: every answer, for real.

const { site, inject } = await startContractService()
const origin = new URL(site.urls[0] ?? '').origin

/** A job of two seed pages (the second gzipped), a 404 and a closed port, finished. */
async function finishedJob (t: Test): Promise<JobDocument> {
  const payload = {
    urls: [site.urls[0], site.urls[1], `${origin}/wiki/Missing`, 'http://127.0.0.1:9/closed'],
    options: { concurrency: 2, retries: 0, headers: { 'Accept-Language': 'en' } }
  }
  const job = json(check(t, await inject('POST', '/jobs', { payload }), 'post', '/jobs'))
  return json(check(t, await inject('GET', `/jobs/${job.id}?wait=30`), 'get', '/jobs/{id}'))
}

contractTest('read: 200 after wait, with every kind of result in input order', async (t) => {
  const done = await finishedJob(t)
  t.equal(done.state, 'completed', 'wait returns once the job is finished')
  t.same(done.results?.map((r) => r.index), [0, 1, 2, 3], 'results in input order')
  t.same(done.results?.map((r) => r.state), ['succeeded', 'succeeded', 'failed', 'failed'])
  t.equal(done.results?.[2]?.error?.code, 'HTTP_STATUS')
  t.equal(done.results?.[1]?.bytes, site.bodies[1]?.length, 'bytes are decoded bytes (this page came gzipped)')
  t.same(done.options.headers, { 'accept-language': 'en' })
  check(t, await inject('HEAD', `/jobs/${done.id}`), 'head', '/jobs/{id}')
})

contractTest('read: results=none leaves results out; pages of results link to the next', async (t) => {
  const done = await finishedJob(t)
  const none = json(check(t, await inject('GET', `/jobs/${done.id}?results=none`), 'get', '/jobs/{id}'))
  t.notOk('results' in none, 'results=none leaves results out')
  t.notOk('page' in none, 'and page')

  const page = json(check(t, await inject('GET', `/jobs/${done.id}?offset=1&limit=2`), 'get', '/jobs/{id}'))
  t.same(page.results?.map((r) => r.index), [1, 2])
  t.same(page.page, { offset: 1, limit: 2, next: `/jobs/${done.id}?offset=3&limit=2` })
  const last = json(check(t, await inject('GET', page.page?.next ?? ''), 'get', '/jobs/{id}'))
  t.same(last.page, { offset: 3, limit: 2, next: null })
  const past = json(check(t, await inject('GET', `/jobs/${done.id}?offset=50`), 'get', '/jobs/{id}'))
  t.same(past.results, [])
})

contractTest('read: 400 for each bad query parameter, named as a JSON pointer', async (t) => {
  for (const [url, path] of [
    [`/jobs/${MISSING_ID}?limit=5000`, '/querystring/limit'],
    [`/jobs/${MISSING_ID}?limit=0`, '/querystring/limit'],
    [`/jobs/${MISSING_ID}?offset=-1`, '/querystring/offset'],
    [`/jobs/${MISSING_ID}?offset=100000001`, '/querystring/offset'],
    [`/jobs/${MISSING_ID}?offset=9007199254740990&limit=5`, '/querystring/offset'],
    [`/jobs/${MISSING_ID}?wait=61`, '/querystring/wait'],
    [`/jobs/${MISSING_ID}?results=all`, '/querystring/results']
  ] as const) {
    const res = await inject('GET', url)
    const problem = check(t, res, 'get', '/jobs/{id}') as { errors?: Array<{ path: string }> }
    t.equal(res.statusCode, 400, url)
    t.same(problem?.errors?.map((e) => e.path), [path])
  }
  check(t, await inject('HEAD', `/jobs/${MISSING_ID}?limit=5000`), 'head', '/jobs/{id}')
})

contractTest('probes: 200 from healthz and readyz', async (t) => {
  for (const path of ['/healthz', '/readyz']) {
    const res = await inject('GET', path)
    t.equal(res.statusCode, 200)
    t.same(check(t, res, 'get', path), { status: 'ok' })
    check(t, await inject('HEAD', path), 'head', path)
  }
})

contractTest('read: at shutdown a request in progress is answered as usual, a wait at once', async (t) => {
  const { api } = await startTrawl(t, { worker: false })
  const base = await api.app.listen({ port: 0, host: '127.0.0.1' })
  const http = httpClient(t)
  const job = (await api.app.inject({ method: 'POST', url: '/jobs', payload: { urls: ['http://a.test/'] } })).json() as JobDocument
  // Close the server as soon as the request has arrived: it is in flight, and its wait has 30 s to go.
  api.app.server.once('request', () => { api.close().catch(() => {}) })
  const started = Date.now()
  const res = await answerOf(await http.fetch(`${base}/jobs/${job.id}?wait=30&results=none`))
  t.equal(res.statusCode, 200, 'not 503')
  t.equal(json(check(t, res, 'get', '/jobs/{id}')).state, 'queued', 'the job as it is')
  t.ok(Date.now() - started < 5000, `the wait ended with the server (${Date.now() - started} ms)`)
})
