import t from 'tap'
import { createDispatcher } from '../../src/fetcher/agent.js'
import { classify, fetchPage, parseRetryAfter } from '../../src/fetcher/fetch-page.js'
import type { FetchHooks, FetchOptions } from '../../src/fetcher/fetch-page.js'
import { createAddressGuard } from '../../src/fetcher/guard.js'
import { freePort as closedPort } from '../../src/redis/free-port.js'
import { startTargetServer } from '../helpers/target-server.js'

const KiB = 1024
const MiB = 1024 * KiB
const opts: FetchOptions = { timeoutMs: 5000, maxBytes: MiB, maxRedirects: 5, headers: {}, keepContent: true, retries: 0 }
const never = new AbortController().signal

const target = await startTargetServer(t)
const agent = createDispatcher({ guard: createAddressGuard(['127.0.0.0/8', '::1/128']) })
t.teardown(() => agent.destroy())

/** Records the backoff waits instead of waiting. */
function recordSleeps (random = 0.5): FetchHooks & { sleeps: number[] } {
  const sleeps: number[] = []
  return { sleeps, random: () => random, sleep: async (ms) => { sleeps.push(ms) } }
}

t.test('a plain page', async (t) => {
  const r = await fetchPage(agent, target.url('/bytes?n=5000'), opts, never)
  t.match(r, { ok: true, status: 200, finalUrl: target.url('/bytes?n=5000'), contentType: 'text/plain', bytes: 5000, error: null, attempts: 1 })
  t.equal(r.body?.length, 5000)
  t.ok(r.durationMs >= 0)

  const dropped = await fetchPage(agent, target.url('/bytes?n=5000&chunked=1'), { ...opts, keepContent: false }, never)
  t.match(dropped, { ok: true, bytes: 5000, body: null })

  const exact = await fetchPage(agent, target.url(`/bytes?n=${MiB}&chunked=1`), opts, never)
  t.match(exact, { ok: true, bytes: MiB }, 'a body of exactly maxBytes fits')
})

t.test('bodies are decoded and counted decoded', async (t) => {
  const n = 200_000
  const expected = 'trawl '.repeat(Math.ceil(n / 6)).slice(0, n)
  for (const coding of ['gzip', 'deflate', 'deflate-raw', 'br']) {
    const r = await fetchPage(agent, target.url(`/encoded?n=${n}&coding=${coding}`), opts, never)
    t.equal(r.ok, true, coding)
    t.equal(r.bytes, n, `${coding}: decoded bytes`)
    t.equal(String(r.body), expected, `${coding}: decoded body`)
  }
  for (const coding of ['gzip', 'deflate', 'br']) {
    const r = await fetchPage(agent, target.url(`/empty-encoded?coding=${coding}`), opts, never)
    t.match(r, { ok: true, bytes: 0 }, `an empty ${coding} body is an empty body`)
  }
  const unknown = await fetchPage(agent, target.url('/corrupt-encoded?coding=zstd'), opts, never)
  t.match(unknown, { ok: true, bytes: 29 }, 'a coding trawl cannot undo is kept as it came')

  const corrupt = await fetchPage(agent, target.url('/corrupt-encoded?coding=gzip'), { ...opts, retries: 2 }, never, recordSleeps())
  t.match(corrupt, { ok: false, status: 200, error: { code: 'NETWORK', message: /could not be decoded/ }, attempts: 1 }, 'a garbled body is not retried')
})

t.test('TOO_LARGE', async (t) => {
  const declared = await fetchPage(agent, target.url(`/bytes?n=${2 * MiB}`), { ...opts, retries: 2 }, never, recordSleeps())
  t.match(declared, { ok: false, status: 200, bytes: 0, body: null, attempts: 1, error: { code: 'TOO_LARGE', message: /2097152 bytes/ } },
    'a content-length past the cap ends it before reading')

  const streamed = await fetchPage(agent, target.url(`/bytes?n=${8 * MiB}&chunked=1`), opts, never)
  t.match(streamed, { ok: false, status: 200, body: null, error: { code: 'TOO_LARGE' } })
  t.ok(streamed.bytes > MiB && streamed.bytes <= MiB + 128 * KiB, `stopped just past the cap (${streamed.bytes})`)

  const encoded = await fetchPage(agent, target.url(`/encoded?n=${2 * MiB}&coding=br`), opts, never)
  t.equal(encoded.error?.code, 'TOO_LARGE', 'the cap is on decoded bytes, not wire bytes')
})

t.test('a gzip bomb ends TOO_LARGE without being inflated or read whole', async (t) => {
  // 1024 members of 16 MiB of zeros: 16 GiB decoded from ~16 MiB on the wire.
  const started = Date.now()
  const r = await fetchPage(agent, target.url('/gzip-bomb?members=1024'), { ...opts, maxBytes: 4 * MiB }, never)
  t.match(r, { ok: false, status: 200, body: null, error: { code: 'TOO_LARGE' } })
  t.ok(r.bytes > 4 * MiB && r.bytes <= 4 * MiB + 64 * KiB, `stopped just past the cap (${r.bytes})`)
  t.ok(Date.now() - started < 5000, `quickly (${Date.now() - started} ms), not after inflating 16 GiB`)
  t.equal(target.bomb.started, true)
  t.equal(target.bomb.finished, false, 'the server never got to send the whole body')
})

t.test('TIMEOUT covers headers, body and every hop', async (t) => {
  const quick = { ...opts, timeoutMs: 300 }
  const headers = await fetchPage(agent, target.url('/slow-headers'), quick, never)
  t.match(headers, { ok: false, status: null, error: { code: 'TIMEOUT', message: /300 ms/ }, attempts: 1 })
  t.ok(headers.durationMs >= 250 && headers.durationMs < 5000, `took ${headers.durationMs} ms`)

  const body = await fetchPage(agent, target.url('/trickle?every=20'), quick, never)
  t.match(body, { ok: false, status: 200, error: { code: 'TIMEOUT' } })
  t.ok(body.bytes > 0, 'the body had started')

  const hops = await fetchPage(agent, target.url('/redirect?to=/chain/2&code=307'), { ...quick, timeoutMs: 2000 }, never)
  t.equal(hops.ok, true, 'hops within the deadline are fine')
  const slowHop = await fetchPage(agent, target.url('/redirect?to=/trickle'), quick, never)
  t.match(slowHop, { status: 200, finalUrl: target.url('/trickle'), error: { code: 'TIMEOUT' } })

  const hooks = recordSleeps()
  const retried = await fetchPage(agent, target.url('/slow-headers'), { ...quick, timeoutMs: 100, retries: 1 }, never, hooks)
  t.match(retried, { error: { code: 'TIMEOUT' }, attempts: 2 }, 'a timeout is retried')
  t.same(hooks.sleeps, [125], 'full jitter: random * 250 ms before the first retry')
})

t.test('the agent’s own timeouts are classified too', async (t) => {
  const strict = createDispatcher({ guard: createAddressGuard(['127.0.0.0/8']), headersTimeoutMs: 100, bodyTimeoutMs: 100 })
  t.teardown(() => strict.destroy())
  const headers = await fetchPage(strict, target.url('/slow-headers'), opts, never)
  t.match(headers, { error: { code: 'TIMEOUT', message: /[Hh]eaders [Tt]imeout/ } })
  // undici's timers tick about every 500 ms, so the gap between chunks must be longer than that.
  const body = await fetchPage(strict, target.url('/trickle?every=1500'), opts, never)
  t.match(body, { status: 200, error: { code: 'TIMEOUT', message: /[Bb]ody [Tt]imeout/ } })
})

t.test('redirects', async (t) => {
  const chain = await fetchPage(agent, target.url('/chain/3'), { ...opts, maxRedirects: 3 }, never)
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
  const sameOrigin = await fetchPage(agent, target.url('/redirect?to=/headers'), { ...opts, headers }, never)
  t.match(JSON.parse(String(sameOrigin.body)), { authorization: 'Bearer secret', cookie: 'a=b', 'x-trace': 'kept' })

  const other = `http://localhost:${target.port}/headers`
  const crossOrigin = await fetchPage(agent, target.url(`/redirect?to=${encodeURIComponent(other)}`), { ...opts, headers }, never)
  t.equal(crossOrigin.finalUrl, other)
  const sent = JSON.parse(String(crossOrigin.body)) as Record<string, string>
  t.equal(sent.authorization, undefined)
  t.equal(sent.cookie, undefined)
  t.equal(sent['x-trace'], 'kept')
})

t.test('HTTP_STATUS and which statuses are retried', async (t) => {
  for (const [code, retried] of [[404, false], [400, false], [410, false], [408, true], [429, true], [500, true], [503, true]] as const) {
    const hooks = recordSleeps()
    const r = await fetchPage(agent, target.url(`/status?code=${code}`), { ...opts, retries: 2 }, never, hooks)
    t.match(r, { ok: false, status: code, body: null, contentType: 'text/plain', error: { code: 'HTTP_STATUS', message: new RegExp(String(code)) } })
    t.equal(r.attempts, retried ? 3 : 1, `${code}: ${retried ? '' : 'not '}retried`)
  }
})

t.test('503 then 200: retried with exponential backoff and full jitter', async (t) => {
  const hooks = recordSleeps(0.5)
  const r = await fetchPage(agent, target.url('/flaky?key=backoff&fails=3'), { ...opts, retries: 3 }, never, hooks)
  t.match(r, { ok: true, status: 200, attempts: 4, error: null })
  t.equal(String(r.body), 'ok after 3')
  t.same(hooks.sleeps, [125, 250, 500])

  const capped = recordSleeps(0.999)
  const r2 = await fetchPage(agent, target.url('/flaky?key=cap&fails=9'), { ...opts, retries: 8 }, never, capped)
  t.equal(r2.attempts, 9)
  t.equal(Math.max(...capped.sleeps), 9990, 'the backoff ceiling stops at 10 s')

  const gaveUp = await fetchPage(agent, target.url('/flaky?key=gaveup&fails=5'), { ...opts, retries: 2 }, never, recordSleeps())
  t.match(gaveUp, { ok: false, status: 503, attempts: 3, error: { code: 'HTTP_STATUS' } })
})

t.test('Retry-After', async (t) => {
  const seconds = recordSleeps()
  const r = await fetchPage(agent, target.url('/flaky?key=ra1&fails=1&code=429&retryAfter=7'), { ...opts, retries: 1 }, never, seconds)
  t.match(r, { ok: true, attempts: 2 })
  t.same(seconds.sleeps, [7000], 'delta-seconds')

  const date = recordSleeps()
  const at = new Date(Date.now() + 30_000).toUTCString()
  await fetchPage(agent, target.url(`/flaky?key=ra2&fails=1&code=503&retryAfter=${encodeURIComponent(at)}`), { ...opts, retries: 1 }, never, date)
  t.equal(date.sleeps.length, 1)
  t.ok((date.sleeps[0] ?? 0) > 28_000 && (date.sleeps[0] ?? 0) <= 30_000, `HTTP-date (${date.sleeps[0]} ms)`)

  const tooLong = recordSleeps()
  const r3 = await fetchPage(agent, target.url('/flaky?key=ra3&fails=1&code=429&retryAfter=120'), { ...opts, retries: 3 }, never, tooLong)
  t.match(r3, { ok: false, status: 429, attempts: 1, error: { code: 'HTTP_STATUS' } }, 'more than 60 s: the 429 is the answer')
  t.same(tooLong.sleeps, [])

  const garbage = recordSleeps(0)
  await fetchPage(agent, target.url('/flaky?key=ra4&fails=1&code=503&retryAfter=soon'), { ...opts, retries: 1 }, never, garbage)
  t.same(garbage.sleeps, [0], 'an unreadable Retry-After falls back to the backoff')
})

t.test('parseRetryAfter', async (t) => {
  const now = Date.parse('2026-11-24T12:00:00Z')
  t.equal(parseRetryAfter(null, now), undefined)
  t.equal(parseRetryAfter('0', now), 0)
  t.equal(parseRetryAfter(' 60 ', now), 60_000)
  t.equal(parseRetryAfter('Tue, 24 Nov 2026 12:00:10 GMT', now), 10_000)
  t.equal(parseRetryAfter('Tue, 24 Nov 2026 11:00:00 GMT', now), 0, 'a date in the past means now')
  t.equal(parseRetryAfter('-5', now), undefined)
  t.equal(parseRetryAfter('later', now), undefined)
})

t.test('NETWORK: a connection reset', async (t) => {
  const r = await fetchPage(agent, target.url('/reset'), opts, never)
  t.match(r, { ok: false, status: null, attempts: 1, error: { code: 'NETWORK' } })

  const hooks = recordSleeps()
  const recovered = await fetchPage(agent, target.url('/reset?key=once&fails=1'), { ...opts, retries: 1 }, never, hooks)
  t.match(recovered, { ok: true, attempts: 2 }, 'a reset is retried')
})

t.test('CONNECT_FAILED: nothing listens on the port', async (t) => {
  const port = await closedPort()
  const hooks = recordSleeps()
  const r = await fetchPage(agent, `http://127.0.0.1:${port}/`, { ...opts, retries: 1 }, never, hooks)
  t.match(r, { ok: false, status: null, finalUrl: `http://127.0.0.1:${port}/`, attempts: 2, error: { code: 'CONNECT_FAILED', message: /ECONNREFUSED/ } })
})

t.test('TLS_FAILED: https to a server that does not speak TLS', async (t) => {
  const r = await fetchPage(agent, `https://127.0.0.1:${target.port}/`, { ...opts, retries: 2 }, never, recordSleeps())
  t.match(r, { ok: false, status: null, attempts: 1, error: { code: 'TLS_FAILED' } })
})

t.test('CANCELLED', async (t) => {
  const pre = new AbortController()
  pre.abort(new Error('shutdown'))
  const before = await fetchPage(agent, target.url('/bytes'), opts, pre.signal)
  t.match(before, { ok: false, attempts: 0, error: { code: 'CANCELLED' } })

  const midBody = new AbortController()
  const reason = new Error('job cancelled')
  const sentBefore = target.trickled.count
  const pending = fetchPage(agent, target.url('/trickle?every=10'), opts, midBody.signal)
  await waitFor(() => target.trickled.count >= sentBefore + 3)
  midBody.abort(reason)
  const r = await pending
  t.match(r, { ok: false, status: 200, error: { code: 'CANCELLED' } })
  t.ok(r.durationMs < 1000, `ended within a second (${r.durationMs} ms)`)
  t.equal(midBody.signal.reason, reason, 'the caller can still tell why')

  const inHeaders = new AbortController()
  const p2 = fetchPage(agent, target.url('/slow-headers'), opts, inHeaders.signal)
  await waitFor(() => target.requests.at(-1) === '/slow-headers')
  inHeaders.abort()
  t.match(await p2, { status: null, error: { code: 'CANCELLED' } })

  // Aborted at the moment the first backoff starts: the sleep must give up at once.
  const inBackoff = new AbortController()
  const r3 = await fetchPage(agent, target.url('/flaky?key=cancel&fails=9'), { ...opts, retries: 5 }, inBackoff.signal, {
    random: () => { inBackoff.abort(); return 0.5 }
  })
  t.match(r3, { status: 503, attempts: 1, error: { code: 'CANCELLED', message: /waiting to retry/ } })

  // A long Retry-After wait is cut short by the signal too.
  const inLongWait = new AbortController()
  const p4 = fetchPage(agent, target.url('/flaky?key=cancel2&fails=9&retryAfter=30'), { ...opts, retries: 5 }, inLongWait.signal)
  await waitFor(() => target.requests.at(-1) === '/flaky?key=cancel2&fails=9&retryAfter=30')
  inLongWait.abort()
  const r4 = await p4
  t.match(r4, { attempts: 1, error: { code: 'CANCELLED' } })
  t.ok(r4.durationMs < 5000, `not 30 s (${r4.durationMs} ms)`)
})

t.test('INTERNAL for what should never reach the fetcher', async (t) => {
  t.match(await fetchPage(agent, 'not a url', opts, never), { attempts: 1, finalUrl: null, error: { code: 'INTERNAL' } })
  t.match(await fetchPage(agent, 'ftp://127.0.0.1/', opts, never), { error: { code: 'INTERNAL' } })
  const r = await fetchPage(agent, target.url('/bytes'), { ...opts, headers: { 'x-bad': 'line\r\nbreak' } }, never)
  t.match(r, { error: { code: 'INTERNAL' } }, 'a header value undici refuses')
})

t.test('classify', async (t) => {
  const err = (code: string, message = code): Error => Object.assign(new Error(message), { code })
  t.match(classify(err('ENOTFOUND')), { code: 'DNS_FAILED', retryable: false })
  t.match(classify(err('EAI_AGAIN')), { code: 'DNS_FAILED', retryable: true })
  t.match(classify(new AggregateError([err('ECONNREFUSED'), err('ECONNREFUSED')], 'all failed')), { code: 'CONNECT_FAILED', retryable: true })
  t.match(classify(err('UND_ERR_CONNECT_TIMEOUT')), { code: 'CONNECT_FAILED', retryable: true })
  t.match(classify(err('DEPTH_ZERO_SELF_SIGNED_CERT')), { code: 'TLS_FAILED', retryable: false })
  t.match(classify(err('ERR_TLS_CERT_ALTNAME_INVALID')), { code: 'TLS_FAILED', retryable: false })
  t.match(classify(err('UND_ERR_SOCKET', 'other side closed')), { code: 'NETWORK', retryable: true, message: 'other side closed' })
  t.match(classify(new Error('wrapped', { cause: err('ECONNRESET') })), { code: 'NETWORK', retryable: true })
  t.match(classify(err('UND_ERR_HEADERS_OVERFLOW')), { code: 'NETWORK', retryable: false })
  t.match(classify(new Error('wrapped', { cause: err('BLOCKED_ADDRESS') })), { code: 'BLOCKED_ADDRESS', retryable: false })
  t.match(classify(new TypeError('x is not a function')), { code: 'INTERNAL', retryable: false })
  t.match(classify('a string'), { code: 'INTERNAL' })
})

t.test('bodies are consumed or destroyed, so connections are reused, not leaked', async (t) => {
  const server = await startTargetServer(t)
  // One connection per origin: a body left unread would hold it, and the next request would time out.
  const own = createDispatcher({ guard: createAddressGuard(['127.0.0.0/8']), connections: 1 })
  t.teardown(() => own.destroy())
  const quick = { ...opts, timeoutMs: 2000 }
  const codes: Array<string | undefined> = []
  for (let i = 0; i < 10; i++) {
    codes.push((await fetchPage(own, server.url('/status?code=404'), quick, never)).error?.code)
    codes.push((await fetchPage(own, server.url('/chain/2'), quick, never)).error?.code)
    codes.push((await fetchPage(own, server.url('/bytes?n=10000'), { ...quick, keepContent: false }, never)).error?.code)
  }
  t.same(new Set(codes), new Set(['HTTP_STATUS', undefined]), 'no request waited in vain for the connection')
  t.equal(server.connections(), 1, '50 requests over one keep-alive connection')

  // Bodies cut short (too large, timed out) close their connection instead of leaving it half read.
  for (let i = 0; i < 3; i++) {
    t.equal((await fetchPage(own, server.url(`/bytes?n=${4 * MiB}&chunked=1`), quick, never)).error?.code, 'TOO_LARGE')
    t.equal((await fetchPage(own, server.url('/trickle?every=10'), { ...quick, timeoutMs: 100 }, never)).error?.code, 'TIMEOUT')
  }
  t.equal((await fetchPage(own, server.url('/bytes?n=10'), quick, never)).ok, true, 'the connection slot is free again')
})

/** Polls a condition on the event loop; never sleeps longer than the condition takes. */
async function waitFor (cond: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((resolve) => setImmediate(resolve))
  }
}
