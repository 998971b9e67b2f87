import { createHash } from 'node:crypto'
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

contractTest('content: ETag is the sha256 of the body; 304 for If-None-Match; Content-Length', async (t) => {
  const done = await finished(t)
  const item = done.results?.[0]
  const sha = createHash('sha256').update(site.bodies[0] ?? Buffer.alloc(0)).digest('hex')
  t.equal(item?.sha256, sha, 'the result carries the sha256 of the decoded body')
  const content = await inject('GET', item?.contentUrl ?? '')
  check(t, content, 'get', '/jobs/{id}/results/{index}/content')
  t.equal(content.headers.etag, `"${sha}"`)
  t.equal(Number(content.headers['content-length']), site.bodies[0]?.length)
  const again = await inject('GET', item?.contentUrl ?? '', { headers: { 'if-none-match': `W/"nope", "${sha}"` } })
  t.equal(again.statusCode, 304)
  check(t, again, 'get', '/jobs/{id}/results/{index}/content')
  const head = await inject('HEAD', item?.contentUrl ?? '', { headers: { 'if-none-match': '*' } })
  t.equal(head.statusCode, 304)
  check(t, head, 'head', '/jobs/{id}/results/{index}/content')
  const headOk = await inject('HEAD', item?.contentUrl ?? '')
  t.equal(Number(headOk.headers['content-length']), site.bodies[0]?.length, 'HEAD tells the length without the body')
})

contractTest('bulk: every result as NDJSON and every stored body as a ZIP; HEAD; 404 for an unknown job', async (t) => {
  const done = await finished(t)
  const lines = await inject('GET', `/jobs/${done.id}/results`)
  check(t, lines, 'get', '/jobs/{id}/results')
  const items = lines.body.trimEnd().split('\n').map((l) => JSON.parse(l) as { index: number, state: string, sha256: string | null })
  t.same(items.map((i) => i.index), [0, 1, 2], 'every result, in input order')
  t.same(items, done.results, 'the same items as the job document')
  check(t, await inject('HEAD', `/jobs/${done.id}/results`), 'head', '/jobs/{id}/results')
  const zip = await inject('GET', `/jobs/${done.id}/archive`)
  check(t, zip, 'get', '/jobs/{id}/archive')
  t.equal(zip.rawPayload.subarray(0, 4).toString('hex'), '504b0304', 'a ZIP')
  const head = await inject('HEAD', `/jobs/${done.id}/archive`)
  check(t, head, 'head', '/jobs/{id}/archive')
  for (const path of ['/jobs/{id}/results', '/jobs/{id}/archive'] as const) {
    for (const id of [MISSING_ID, 'not-an-id']) {
      const res = await inject('GET', path.replace('{id}', id))
      t.equal((check(t, res, 'get', path) as { code: string }).code, 'JOB_NOT_FOUND')
    }
    check(t, await inject('HEAD', path.replace('{id}', MISSING_ID)), 'head', path)
  }
})

contractTest('purge: 204, then the job is 404 everywhere; 400 for a purge that is neither true nor false', async (t) => {
  const done = await finished(t)
  const bad = await inject('DELETE', `/jobs/${done.id}?purge=yes`)
  t.equal(bad.statusCode, 400)
  check(t, bad, 'delete', '/jobs/{id}')
  const purged = await inject('DELETE', `/jobs/${done.id}?purge=true`)
  t.equal(purged.statusCode, 204)
  check(t, purged, 'delete', '/jobs/{id}')
  for (const [method, path] of [['get', '/jobs/{id}'], ['get', '/jobs/{id}/results'], ['get', '/jobs/{id}/archive'], ['get', '/jobs/{id}/results/{index}/content'], ['delete', '/jobs/{id}']] as const) {
    const res = await inject(method.toUpperCase(), path.replace('{id}', done.id).replace('{index}', '0'))
    t.equal((check(t, res, method, path) as { code: string }).code, 'JOB_NOT_FOUND', `${method} ${path} after the purge`)
  }
  const again = await inject('DELETE', `/jobs/${done.id}?purge=true`)
  t.equal(again.statusCode, 404, 'a second purge finds nothing')
})
