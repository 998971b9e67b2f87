import t from 'tap'
import { createDispatcher } from '../../src/fetcher/agent.js'
import { fetchPage } from '../../src/fetcher/fetch-page.js'
import { createAddressGuard } from '../../src/fetcher/guard.js'
import { startTargetServer } from '../helpers/target-server.js'
import { fetchKept, fetchTarget, MiB, never, opts, recordSleeps } from './fixtures.js'

const { target, agent } = await fetchTarget(t)

t.test('a plain page', async (t) => {
  const t0 = performance.now()
  const r = await fetchKept(agent, target.url('/bytes?n=5000'), opts, never)
  const wall = performance.now() - t0
  t.match(r, { ok: true, status: 200, finalUrl: target.url('/bytes?n=5000'), contentType: 'text/plain', bytes: 5000, error: null, attempts: 1 })
  t.equal(r.body?.length, 5000)
  t.ok(Number.isInteger(r.durationMs) && r.durationMs <= Math.ceil(wall), `whole milliseconds within the call's wall time (${r.durationMs} of ${wall.toFixed(1)} ms)`)

  const dropped = await fetchPage(agent, target.url('/bytes?n=5000&chunked=1'), opts, never)
  t.match(dropped, { ok: true, bytes: 5000, sha256: null }, 'without a sink the body is counted and dropped')
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
    codes.push((await fetchPage(own, server.url('/bytes?n=10000'), quick, never)).error?.code)
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
