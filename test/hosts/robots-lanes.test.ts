/**
 * `options.robots` through the API and a real worker: one target per robots.txt case, each
 * on its own loopback address (its own host).
 */
import t from 'tap'
import type { JobDocument } from '../../src/jobs/schemas.js'
import { startTrawl } from '../helpers/trawl.js'
import { startTarget, type Target } from './helpers.js'

/** A target whose /robots.txt answers `status` with `body`; every other path 200, start times kept. */
async function site (host: string, status: number, body: string): Promise<Target & { starts: number[] }> {
  const starts: number[] = []
  const target = await startTarget(t, (req, res) => {
    if (req.url === '/robots.txt') {
      res.writeHead(status, { 'content-type': 'text/plain' }).end(body)
      return
    }
    starts.push(Date.now())
    res.end('page')
  }, host)
  return Object.assign(target, { starts })
}

t.test('robots: obey fetches each robots.txt once and follows it; ignore never asks', async (t) => {
  const rules = await site('127.0.0.10', 200, 'User-agent: *\nDisallow: /private\n')
  const missing = await site('127.0.0.11', 404, 'no such file')
  const failing = await site('127.0.0.12', 500, 'oops')
  const slow = await site('127.0.0.13', 200, 'User-agent: trawl\nCrawl-delay: 0.4\n')
  const { api } = await startTrawl(t, { env: { HOST_CONCURRENCY: '8' } })
  const urls = [
    `${rules.origin}/public/1`, `${rules.origin}/private/1`, `${rules.origin}/public/2`, `${rules.origin}/private/2`,
    `${missing.origin}/a`, `${missing.origin}/b`,
    `${failing.origin}/a`,
    ...Array.from({ length: 4 }, (_, i) => `${slow.origin}/${i}`)
  ]
  const submitted = await api.app.inject({ method: 'POST', url: '/jobs', payload: { urls, options: { concurrency: 8, robots: 'obey', keepContent: false } } })
  t.equal(submitted.statusCode, 202)
  const job: JobDocument = (await api.app.inject(`/jobs/${submitted.json().id}?wait=60`)).json()
  t.equal(job.options.robots, 'obey')
  const code = (i: number) => job.results?.[i]?.error?.code ?? job.results?.[i]?.state
  t.same([0, 1, 2, 3].map(code), ['succeeded', 'ROBOTS_DISALLOWED', 'succeeded', 'ROBOTS_DISALLOWED'], 'allowed and disallowed paths')
  t.same({ robots: rules.hits.get('/robots.txt'), private: (rules.hits.get('/private/1') ?? 0) + (rules.hits.get('/private/2') ?? 0) }, { robots: 1, private: 0 },
    'robots.txt fetched once for the host; the disallowed URLs never requested')
  t.equal(job.results?.[1]?.attempts, 0, 'a disallowed URL made no attempt')
  t.same([4, 5].map(code), ['succeeded', 'succeeded'], 'a missing robots.txt (404) allows everything')
  t.equal(code(6), 'ROBOTS_DISALLOWED', 'one that fails (500) disallows everything, as RFC 9309 says')
  t.equal(failing.starts.length, 0, 'and nothing else was requested there')
  t.same([7, 8, 9, 10].map(code), ['succeeded', 'succeeded', 'succeeded', 'succeeded'])
  const starts = [...slow.starts].sort((a, b) => a - b)
  const gaps = starts.slice(1).map((at, i) => at - (starts[i] as number))
  t.ok(gaps.length === 3 && gaps.every((g) => g >= 350), `Crawl-delay 0.4 s spaces the starts (${gaps.join(', ')} ms)`)

  const ignoring = await api.app.inject({ method: 'POST', url: '/jobs', payload: { urls: [`${rules.origin}/private/3`], options: { keepContent: false } } })
  const done: JobDocument = (await api.app.inject(`/jobs/${ignoring.json().id}?wait=60`)).json()
  t.equal(done.results?.[0]?.state, 'succeeded', 'robots: ignore (the default) fetches what robots.txt disallows')
  t.equal(rules.hits.get('/robots.txt'), 1, 'without asking for robots.txt')
})

t.test('robots: obey on a blocked address: the URL ends BLOCKED_ADDRESS, not ROBOTS_DISALLOWED', async (t) => {
  const { api } = await startTrawl(t, { env: { HOST_CONCURRENCY: '8' } })
  // 10.255.255.1 is private: the guard refuses it before any packet leaves.
  const submitted = await api.app.inject({ method: 'POST', url: '/jobs', payload: { urls: ['http://10.255.255.1/page'], options: { robots: 'obey', keepContent: false, retries: 0 } } })
  t.equal(submitted.statusCode, 202)
  const job: JobDocument = (await api.app.inject(`/jobs/${submitted.json().id}?wait=60`)).json()
  t.equal(job.results?.[0]?.error?.code, 'BLOCKED_ADDRESS', 'the contract\'s code for a blocked address')
})
