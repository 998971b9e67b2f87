import { check, contractTest } from '../helpers/contract/check.js'
import { json, MISSING_ID, startContractService } from '../helpers/contract/service.js'

// GET and HEAD /jobs/{id}/results/{index}/content against openapi.yaml: every answer, for real.

const { site, inject } = await startContractService()
const origin = new URL(site.urls[0] ?? '').origin

/** A finished job: two seed pages (the second came gzipped), then a 404. */
async function finished (t: Parameters<typeof check>[0], options: Record<string, unknown> = {}) {
  const payload = { urls: [site.urls[0], site.urls[1], `${origin}/wiki/Missing`], options: { retries: 0, ...options } }
  const job = json(check(t, await inject('POST', '/jobs', { payload }), 'post', '/jobs'))
  return json(check(t, await inject('GET', `/jobs/${job.id}?wait=30`), 'get', '/jobs/{id}'))
}

contractTest('content: 200 with the decoded body byte for byte and its Content-Type; HEAD', async (t) => {
  const done = await finished(t)
  for (const i of [0, 1]) {
    const item = done.results?.[i]
    const content = await inject('GET', item?.contentUrl ?? '')
    check(t, content, 'get', '/jobs/{id}/results/{index}/content')
    t.equal(content.statusCode, 200)
    t.equal(content.headers['content-type'], item?.contentType, 'the Content-Type it came with')
    t.ok(content.rawPayload.equals(site.bodies[i] ?? Buffer.alloc(0)), 'the decoded body, byte for byte')
    check(t, await inject('HEAD', item?.contentUrl ?? ''), 'head', '/jobs/{id}/results/{index}/content')
  }
})

contractTest('content: 404 CONTENT_NOT_FOUND for a failed URL and for an index past the end', async (t) => {
  const done = await finished(t)
  t.equal(done.results?.[2]?.state, 'failed')
  const failed = await inject('GET', `/jobs/${done.id}/results/2/content`)
  t.equal((check(t, failed, 'get', '/jobs/{id}/results/{index}/content') as { code: string }).code, 'CONTENT_NOT_FOUND')
  const beyond = await inject('GET', `/jobs/${done.id}/results/99/content`)
  t.equal((check(t, beyond, 'get', '/jobs/{id}/results/{index}/content') as { code: string }).code, 'CONTENT_NOT_FOUND')
  check(t, await inject('HEAD', `/jobs/${done.id}/results/2/content`), 'head', '/jobs/{id}/results/{index}/content')
})

contractTest('content: keepContent false stores no body', async (t) => {
  const res = await inject('POST', '/jobs', { payload: { urls: [site.urls[2]], options: { keepContent: false } } })
  const job = json(check(t, res, 'post', '/jobs'))
  const done = json(check(t, await inject('GET', `/jobs/${job.id}?wait=30`), 'get', '/jobs/{id}'))
  t.equal(done.results?.[0]?.state, 'succeeded')
  t.equal(done.results?.[0]?.contentUrl, null)
  const content = await inject('GET', `/jobs/${job.id}/results/0/content`)
  t.equal((check(t, content, 'get', '/jobs/{id}/results/{index}/content') as { code: string }).code, 'CONTENT_NOT_FOUND')
})

contractTest('content: 400 for an index that is not a non-negative integer', async (t) => {
  for (const url of [`/jobs/${MISSING_ID}/results/abc/content`, `/jobs/${MISSING_ID}/results/-1/content`]) {
    const res = await inject('GET', url)
    const problem = check(t, res, 'get', '/jobs/{id}/results/{index}/content') as { errors?: Array<{ path: string }> }
    t.equal(res.statusCode, 400, url)
    t.same(problem?.errors?.map((e) => e.path), ['/params/index'])
  }
  check(t, await inject('HEAD', `/jobs/${MISSING_ID}/results/abc/content`), 'head', '/jobs/{id}/results/{index}/content')
})
