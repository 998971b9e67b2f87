import t, { type Test } from 'tap'
import { createDispatcher, DEFAULT_USER_AGENT } from '../../src/fetcher/agent.js'
import { createAddressGuard } from '../../src/fetcher/guard.js'
import { createRobots, type RobotsOptions } from '../../src/hosts/robots.js'
import { testPrefix } from '../helpers/redis.js'
import { connect, hold, startTarget } from './helpers.js'

const RULES = [
  'User-agent: *',
  'Disallow: /private',
  'Crawl-delay: 2',
  '',
  'User-agent: otherbot',
  'Disallow: /'
].join('\n')

// The worker's guarded dispatcher, opened for loopback as the tests' FETCH_ALLOW_CIDRS does.
function guarded (t: Test, allow = '127.0.0.0/8') {
  const dispatcher = createDispatcher({ guard: createAddressGuard(allow), keepAliveTimeoutMs: 100 })
  t.teardown(() => dispatcher.close())
  return dispatcher
}

function robots (t: Test, prefix: string, extra: Partial<RobotsOptions> = {}) {
  return createRobots({ redis: connect(t), prefix, dispatcher: guarded(t), userAgent: DEFAULT_USER_AGENT, ...extra })
}

/** A server whose /robots.txt answers with `answer`, counting its requests. */
async function site (t: Test, answer: (res: import('node:http').ServerResponse, path: string) => unknown) {
  return startTarget(t, (req, res) => answer(res, req.url ?? '/'))
}

t.test('rules, groups and Crawl-delay of a served robots.txt', async (t) => {
  const prefix = testPrefix(t, 'hosts-robots')
  const s = await site(t, (res) => res.end(RULES))
  const r = robots(t, prefix)
  t.same(await r.allowed(`${s.origin}/public/page`), { allowed: true, crawlDelayMs: 2000, source: 'fetched' })
  t.same(await r.allowed(`${s.origin}/private/x?y=1`), { allowed: false, crawlDelayMs: 2000, source: 'fetched' })
  t.equal((await r.allowed(`${s.origin}/public`, 'OtherBot/2.0')).allowed, false, 'the group of the named agent applies')
  t.equal(s.hits.get('/robots.txt'), 1, 'fetched once for every check')
  t.equal(r.fetches, 1)
})

t.test('a group for trawl itself applies to trawl\'s User-Agent', async (t) => {
  const prefix = testPrefix(t, 'hosts-robots')
  const s = await site(t, (res) => res.end('User-agent: trawl\nDisallow: /\n\nUser-agent: *\nAllow: /\n'))
  t.equal((await robots(t, prefix).allowed(`${s.origin}/a`)).allowed, false)
})

t.test('missing (404) allows everything', async (t) => {
  const prefix = testPrefix(t, 'hosts-robots')
  const s = await site(t, (res) => { res.statusCode = 404; res.end('no') })
  t.same(await robots(t, prefix).allowed(`${s.origin}/anything`), { allowed: true, crawlDelayMs: 0, source: 'missing' })
})

t.test('failing (500) disallows everything, cached for a shorter time', async (t) => {
  const prefix = testPrefix(t, 'hosts-robots')
  let status = 500
  const s = await site(t, (res) => { res.statusCode = status; res.end(status === 200 ? RULES : 'down') })
  const r = robots(t, prefix, { unreachableCacheMs: 300 })
  t.same(await r.allowed(`${s.origin}/a`), { allowed: false, crawlDelayMs: 0, source: 'unreachable' })
  t.equal((await r.allowed(`${s.origin}/b`)).allowed, false, 'from the cache')
  t.equal(s.hits.get('/robots.txt'), 1)
  status = 200
  await hold(320)
  t.same(await r.allowed(`${s.origin}/a`), { allowed: true, crawlDelayMs: 2000, source: 'fetched' }, 'tried again once the short cache lapsed')
  t.equal(s.hits.get('/robots.txt'), 2)
})

t.test('a robots.txt that never answers within the timeout is unreachable', async (t) => {
  const prefix = testPrefix(t, 'hosts-robots')
  const s = await site(t, () => new Promise(() => {}))
  const started = performance.now()
  t.same(await robots(t, prefix, { timeoutMs: 300 }).allowed(`${s.origin}/a`), { allowed: false, crawlDelayMs: 0, source: 'unreachable' })
  t.ok(performance.now() - started < 1500, 'given up at the timeout')
})

t.test('redirects are followed up to five; more count as missing', async (t) => {
  const prefix = testPrefix(t, 'hosts-robots')
  const chain = (hops: number) => site(t, (res, path) => {
    const n = path === '/robots.txt' ? 0 : Number(path.slice(1))
    if (n < hops) {
      res.writeHead(301, { location: `/${n + 1}` })
      res.end()
    } else {
      res.end('User-agent: *\nDisallow: /\n')
    }
  })
  const five = await chain(5)
  t.same(await robots(t, prefix).allowed(`${five.origin}/a`), { allowed: false, crawlDelayMs: 0, source: 'fetched' })
  const six = await chain(6)
  t.same(await robots(t, prefix).allowed(`${six.origin}/a`), { allowed: true, crawlDelayMs: 0, source: 'missing' })
})

t.test('only the first maxBytes are read', async (t) => {
  const prefix = testPrefix(t, 'hosts-robots')
  const s = await site(t, (res) => res.end('User-agent: *\n' + '# filler\n'.repeat(2000) + 'Disallow: /\n'))
  t.equal((await robots(t, prefix, { maxBytes: 1024 }).allowed(`${s.origin}/a`)).allowed, true, 'the rule past the cap is not seen')
})

t.test('robots.txt goes through the address guard; a blocked host is left to the URL\'s own fetch', async (t) => {
  const prefix = testPrefix(t, 'hosts-robots')
  const s = await site(t, (res) => res.end(RULES))
  const r = createRobots({ redis: connect(t), prefix, dispatcher: guarded(t, ''), userAgent: DEFAULT_USER_AGENT })
  // Not `unreachable` (everything disallowed): the page's fetch meets the same guard and ends
  // BLOCKED_ADDRESS, which is what the user should read.
  t.same(await r.allowed(`${s.origin}/private`), { allowed: true, crawlDelayMs: 0, source: 'blocked' })
  t.equal(s.hits.get('/robots.txt'), undefined, 'no request reached the blocked address')
})

t.test('the cache is shared: another worker does not fetch again', async (t) => {
  const prefix = testPrefix(t, 'hosts-robots')
  const s = await site(t, (res) => res.end(RULES))
  const first = robots(t, prefix)
  const second = robots(t, prefix)
  t.equal((await first.allowed(`${s.origin}/private`)).allowed, false)
  t.equal((await second.allowed(`${s.origin}/private`)).allowed, false)
  t.equal(second.fetches, 0)
  t.equal(s.hits.get('/robots.txt'), 1)
})

t.test('one fetch at a time: ten concurrent checks on two workers make one request', async (t) => {
  const prefix = testPrefix(t, 'hosts-robots')
  const s = await site(t, async (res) => { await hold(150); res.end(RULES) })
  const workers = [robots(t, prefix), robots(t, prefix)]
  const verdicts = await Promise.all(Array.from({ length: 10 }, (_, i) => workers[i % 2]!.allowed(`${s.origin}/p${i}`)))
  t.ok(verdicts.every((v) => v.allowed && v.crawlDelayMs === 2000))
  t.equal(s.hits.get('/robots.txt'), 1)
  t.equal(workers[0]!.fetches + workers[1]!.fetches, 1)
})
