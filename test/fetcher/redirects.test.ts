import t from 'tap'
import { fetchPage } from '../../src/fetcher/fetch-page.js'
import { isHttpUrl, isRedirectStatus, nextHop } from '../../src/fetcher/redirects.js'
import { fetchKept, fetchTarget, never, opts, recordSleeps } from './fixtures.js'

const { target, agent } = await fetchTarget(t)

t.test('isRedirectStatus and isHttpUrl', async (t) => {
  for (const s of [301, 302, 303, 307, 308]) t.equal(isRedirectStatus(s), true, String(s))
  for (const s of [200, 300, 304, 305, 306, 309, 404]) t.equal(isRedirectStatus(s), false, String(s))
  t.equal(isHttpUrl(new URL('http://a/')), true)
  t.equal(isHttpUrl(new URL('HTTPS://a/')), true)
  t.equal(isHttpUrl(new URL('ftp://a/')), false)
})

t.test('nextHop', async (t) => {
  const from = new URL('http://a.test/dir/page?q=1')
  const headers = { authorization: 'Bearer x', cookie: 'c=1', 'proxy-authorization': 'p', 'x-trace': 't' }
  const frozen = structuredClone(headers)

  t.match(nextHop(from, 'next', headers, 0, 5), { ok: true, url: new URL('http://a.test/dir/next') }, 'relative to the URL that answered')
  t.match(nextHop(from, '//b.test/x', headers, 0, 5), { ok: true, url: new URL('http://b.test/x') }, 'scheme-relative')
  t.match(nextHop(from, 'https://a.test/dir/page', headers, 0, 5), { ok: true, url: new URL('https://a.test/dir/page') })

  const same = nextHop(from, '/other', headers, 0, 5)
  t.equal(same.ok && same.headers, headers, 'same origin: the headers go on as they are')
  const cross = nextHop(from, 'http://b.test/', headers, 0, 5)
  t.same(cross.ok && cross.headers, { 'x-trace': 't' }, 'another origin: credentials stay behind')
  const upgraded = nextHop(from, 'https://a.test/', headers, 0, 5)
  t.same(upgraded.ok && upgraded.headers, { 'x-trace': 't' }, 'http to https of the same host is another origin')
  const port = nextHop(from, 'http://a.test:8080/', headers, 0, 5)
  t.same(port.ok && port.headers, { 'x-trace': 't' }, 'so is another port')
  t.same(headers, frozen, 'the headers given are never changed')

  t.same(nextHop(from, '/x', headers, 4, 5).ok, true, 'the 5th of 5 is followed')
  t.same(nextHop(from, '/x', headers, 5, 5), { ok: false, code: 'TOO_MANY_REDIRECTS', message: 'more than 5 redirects' })
  t.same(nextHop(from, '/x', headers, 0, 0), { ok: false, code: 'TOO_MANY_REDIRECTS', message: 'more than 0 redirects' })
  t.match(nextHop(from, 'http://[::1', headers, 0, 5), { ok: false, code: 'HTTP_STATUS', message: /invalid location/ })
  t.match(nextHop(from, 'mailto:x@a.test', headers, 0, 5), { ok: false, code: 'HTTP_STATUS', message: 'redirect to a mailto: URL, which is not followed' })
  t.match(nextHop(from, 'http://[::1', headers, 5, 5), { code: 'TOO_MANY_REDIRECTS' }, 'the count is checked before the location')
})

t.test('redirects', async (t) => {
  const chain = await fetchKept(agent, target.url('/chain/3'), { ...opts, maxRedirects: 3 }, never)
  t.match(chain, { ok: true, status: 200, finalUrl: target.url('/chain/0'), attempts: 1 })
  t.equal(String(chain.body), 'end of chain')

  const short = await fetchPage(agent, target.url('/chain/3'), { ...opts, maxRedirects: 2, retries: 2 }, never, recordSleeps())
  t.match(short, { ok: false, status: 301, finalUrl: target.url('/chain/1'), attempts: 1, error: { code: 'TOO_MANY_REDIRECTS', message: /more than 2/ } })

  const none = await fetchPage(agent, target.url('/chain/1'), { ...opts, maxRedirects: 0 }, never)
  t.match(none, { status: 301, error: { code: 'TOO_MANY_REDIRECTS' } })

  const before = target.requests.length
  const loop = await fetchPage(agent, target.url('/loop'), opts, never)
  t.match(loop, { status: 302, finalUrl: target.url('/loop'), error: { code: 'TOO_MANY_REDIRECTS' } })
  t.equal(target.requests.length - before, 6, 'the first request and 5 redirects')

  for (const to of ['ftp://127.0.0.1/', 'file:///etc/passwd', 'data:text/plain,hi', 'javascript:alert(1)']) {
    const r = await fetchPage(agent, target.url(`/redirect?to=${encodeURIComponent(to)}`), opts, never)
    t.match(r, { ok: false, status: 302, error: { code: 'HTTP_STATUS', message: /not followed/ } }, to)
  }

  const bad = await fetchPage(agent, target.url(`/redirect?to=${encodeURIComponent('http://[::1')}`), opts, never)
  t.match(bad, { status: 302, error: { code: 'HTTP_STATUS', message: /invalid location/ } })

  const noLocation = await fetchPage(agent, target.url('/status?code=302'), opts, never)
  t.match(noLocation, { status: 302, error: { code: 'HTTP_STATUS' } }, 'a redirect without Location is an answer')
})

t.test('credentials stay with their origin across redirects', async (t) => {
  const headers = { Authorization: 'Bearer secret', Cookie: 'a=b', 'X-Trace': 'kept' }
  const sameOrigin = await fetchKept(agent, target.url('/redirect?to=/headers'), { ...opts, headers }, never)
  t.match(JSON.parse(String(sameOrigin.body)), { authorization: 'Bearer secret', cookie: 'a=b', 'x-trace': 'kept' })

  const other = `http://localhost:${target.port}/headers`
  const crossOrigin = await fetchKept(agent, target.url(`/redirect?to=${encodeURIComponent(other)}`), { ...opts, headers }, never)
  t.equal(crossOrigin.finalUrl, other)
  const sent = JSON.parse(String(crossOrigin.body)) as Record<string, string>
  t.equal(sent.authorization, undefined)
  t.equal(sent.cookie, undefined)
  t.equal(sent['x-trace'], 'kept')

  // Back to the first origin after a detour: what was dropped stays dropped, as in fetch.
  const back = target.url('/headers')
  const detour = `http://localhost:${target.port}/redirect?to=${encodeURIComponent(back)}`
  const returned = await fetchKept(agent, target.url(`/redirect?to=${encodeURIComponent(detour)}`), { ...opts, headers }, never)
  t.equal(returned.finalUrl, back)
  t.notMatch(JSON.parse(String(returned.body)), { authorization: String })
})
