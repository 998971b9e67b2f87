import { check, contractTest } from '../helpers/contract/check.js'
import { injector, json } from '../helpers/contract/service.js'
import { startTrawl } from '../helpers/trawl.js'

// GET and HEAD /jobs against openapi.yaml: every answer, for real. Each test runs a service of
// its own, so the tenant's list holds only the jobs the test made.

type JobList = { jobs: Array<{ id: string, state: string }>, page: { next: string | null } }

contractTest('list: 200, newest first, filtered and paged by cursor; HEAD', async (t) => {
  const { api } = await startTrawl(t, { worker: false })
  const inject = injector(api.app)
  const ids: string[] = []
  for (let i = 0; i < 3; i++) ids.unshift(json(check(t, await inject('POST', '/jobs', { payload: { urls: [`http://a.test/${i}`] } }), 'post', '/jobs')).id)
  await inject('DELETE', `/jobs/${ids[1] ?? ''}`)

  const all = check(t, await inject('GET', '/jobs'), 'get', '/jobs') as JobList
  t.same(all.jobs.map((j) => j.id), ids, 'newest first')
  t.equal(all.page.next, null)
  const first = check(t, await inject('GET', '/jobs?limit=2'), 'get', '/jobs') as JobList
  t.same(first.jobs.map((j) => j.id), ids.slice(0, 2))
  const rest = check(t, await inject('GET', first.page.next ?? ''), 'get', '/jobs') as JobList
  t.same(rest.jobs.map((j) => j.id), ids.slice(2), 'page.next leads on to the rest')
  t.equal(rest.page.next, null)
  const cancelled = check(t, await inject('GET', '/jobs?state=cancelled&state=failed'), 'get', '/jobs') as JobList
  t.same(cancelled.jobs.map((j) => [j.id, j.state]), [[ids[1], 'cancelled']])
  check(t, await inject('HEAD', '/jobs?state=queued'), 'head', '/jobs')
})

contractTest('list: 400 for a bad cursor, limit or state, named as a JSON pointer', async (t) => {
  const { api } = await startTrawl(t, { worker: false })
  const inject = injector(api.app)
  for (const [url, path] of [
    ['/jobs?cursor=not-a-cursor', '/querystring/cursor'],
    ['/jobs?limit=201', '/querystring/limit'],
    ['/jobs?state=finished', '/querystring/state/0']
  ] as const) {
    const res = await inject('GET', url)
    t.equal(res.statusCode, 400, url)
    t.same((check(t, res, 'get', '/jobs') as { errors?: Array<{ path: string }> }).errors?.map((e) => e.path), [path])
  }
  check(t, await inject('HEAD', '/jobs?cursor=not-a-cursor'), 'head', '/jobs')
})
