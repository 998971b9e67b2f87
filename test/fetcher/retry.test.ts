import t from 'tap'
import { fetchPage } from '../../src/fetcher/fetch-page.js'
import {
  BACKOFF_BASE_MS, BACKOFF_CAP_MS, backoffMs, isRetryableStatus, parseRetryAfter, RETRY_AFTER_MAX_MS, retryWaitMs
} from '../../src/fetcher/retry.js'
import { fetchKept, fetchTarget, never, opts, recordSleeps } from './fixtures.js'

const { target, agent } = await fetchTarget(t)
const justBelowOne = 1 - Number.EPSILON

t.test('backoffMs: exponential ceiling, full jitter, capped', async (t) => {
  for (let retry = 1; retry <= 12; retry++) {
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (retry - 1))
    t.equal(backoffMs(retry, () => 0), 0, `retry ${retry}: the floor is 0`)
    t.equal(backoffMs(retry, () => 0.5), ceiling / 2, `retry ${retry}: half the ceiling (${ceiling / 2})`)
    t.ok(backoffMs(retry, () => justBelowOne) < ceiling, `retry ${retry}: below the ceiling`)
  }
  t.equal(backoffMs(1, () => 0.5), 125)
  t.equal(backoffMs(3, () => 0.5), 500)
  t.equal(backoffMs(6, () => 0.5), 4000)
  t.equal(backoffMs(7, () => 0.5), BACKOFF_CAP_MS / 2, 'from the 7th retry on the ceiling is the cap')
  t.equal(backoffMs(40, () => 0.5), BACKOFF_CAP_MS / 2)
})

t.test('retryWaitMs: Retry-After first, within its cap; whole milliseconds', async (t) => {
  let draws = 0
  const random = (): number => { draws++; return 0.3333 }
  t.equal(retryWaitMs(1, undefined, random), 83, 'backoff, rounded (0.3333 * 250)')
  t.equal(draws, 1)
  t.equal(retryWaitMs(1, 7000, random), 7000)
  t.equal(retryWaitMs(1, 0, random), 0)
  t.equal(retryWaitMs(2, 1234.6, random), 1235)
  t.equal(retryWaitMs(1, RETRY_AFTER_MAX_MS, random), RETRY_AFTER_MAX_MS, 'exactly the cap is honoured')
  t.equal(retryWaitMs(1, RETRY_AFTER_MAX_MS + 1, random), null, 'past the cap the answer stands')
  t.equal(draws, 1, 'no jitter drawn when the server said how long')
})

t.test('isRetryableStatus', async (t) => {
  for (const s of [408, 429, 500, 502, 503, 504, 599]) t.equal(isRetryableStatus(s), true, String(s))
  for (const s of [400, 401, 403, 404, 410, 418, 499]) t.equal(isRetryableStatus(s), false, String(s))
})

t.test('parseRetryAfter', async (t) => {
  const now = Date.parse('2026-11-24T12:00:00Z')
  t.equal(parseRetryAfter(null, now), undefined)
  t.equal(parseRetryAfter('', now), undefined)
  t.equal(parseRetryAfter('0', now), 0)
  t.equal(parseRetryAfter(' 60 ', now), 60_000)
  t.equal(parseRetryAfter('120', now), 120_000, 'past the cap is still parsed; the policy decides')
  t.equal(parseRetryAfter('Tue, 24 Nov 2026 12:00:10 GMT', now), 10_000, 'IMF-fixdate')
  t.equal(parseRetryAfter('Tuesday, 24-Nov-26 12:00:10 GMT', now), 10_000, 'obsolete RFC 850 date')
  t.equal(parseRetryAfter('Tue Nov 24 12:00:10 2026', now) !== undefined, true, 'asctime is read as a date')
  t.equal(parseRetryAfter('Tue, 24 Nov 2026 11:00:00 GMT', now), 0, 'a date in the past means now')
  t.equal(parseRetryAfter('-5', now), undefined)
  t.equal(parseRetryAfter('1.5', now), undefined, 'not delta-seconds, and not a date either')
  t.equal(parseRetryAfter('later', now), undefined)
  t.equal(parseRetryAfter('Mon, 99 Foo 2026', now), undefined, 'a day name and then nonsense')
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
  const r = await fetchKept(agent, target.url('/flaky?key=backoff&fails=3'), { ...opts, retries: 3 }, never, hooks)
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

t.test('durationMs includes the backoff waits', async (t) => {
  const waits: number[] = []
  const sleep = async (ms: number): Promise<void> => {
    waits.push(ms)
    await new Promise((resolve) => setTimeout(resolve, 150))
  }
  const r = await fetchPage(agent, target.url('/flaky?key=duration&fails=2'), { ...opts, retries: 2 }, never, { sleep, random: () => 0 })
  t.match(r, { ok: true, attempts: 3 })
  t.same(waits, [0, 0])
  t.ok(r.durationMs >= 290, `two 150 ms waits are counted (${r.durationMs} ms)`)
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
