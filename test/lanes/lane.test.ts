import t from 'tap'
import { ABORT_CANCELLED, ABORT_SHUTDOWN, runLane, toStoredResult, type LaneDeps } from '../../src/lanes/lane.js'

// runLane on its own: fake deps stand in for the step script, the job record and the fetcher,
// so no BullMQ, no Redis and no network. Each test asserts the exact sequence of step() calls,
// which is the lane's whole conversation with Redis: what it reports and whether it claims.

type LaneData = Parameters<typeof runLane>[0]
type Finished = Extract<NonNullable<Parameters<LaneDeps['step']>[3]>, { result: unknown }>
type StepReply = Awaited<ReturnType<LaneDeps['step']>>
type PageResult = Awaited<ReturnType<LaneDeps['fetch']>>
type JobOptions = NonNullable<Awaited<ReturnType<LaneDeps['laneContext']>>>['options']

const SHA = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'
const DATA: LaneData = { jobId: 'j_01JAAAAAAAAAAAAAAAAAAAAAAA', lane: 3 }
const TENANT = 'team-a'
const OPTIONS: JobOptions = { concurrency: 2, timeoutMs: 1000, retries: 0, maxBytes: 1000, maxRedirects: 0, headers: {}, keepContent: true, robots: 'ignore' }

/** A page as the fetcher returns it for `url`; a URL with "fail" in it is a 404. */
function page (url: string, extra: Partial<PageResult> = {}): PageResult {
  const ok = !url.includes('fail')
  return {
    ok,
    status: ok ? 200 : 404,
    finalUrl: url,
    contentType: 'text/plain',
    bytes: ok ? url.length : 0,
    sha256: ok ? SHA : null,
    error: ok ? null : { code: 'HTTP_STATUS', message: 'HTTP 404' },
    attempts: 1,
    durationMs: 1,
    ...extra
  }
}

const CANCELLED_PAGE: Partial<PageResult> = { ok: false, status: null, bytes: 0, sha256: null, error: { code: 'CANCELLED', message: 'aborted' }, attempts: 1 }

interface Fake {
  deps: LaneDeps
  /** step() as it was called: the index reported (null for none) and whether the lane claimed. */
  calls: Array<[reported: number | null, claim: boolean]>
  reports: Finished[]
  fetched: string[]
  /** Resolves when the fetch of `url` has started. */
  started(url: string): Promise<AbortSignal>
}

/**
 * A job of `urls` as the step script keeps it: a claim takes the next index, a report closes one,
 * `over` once `overAfter` reports were made (the job finished or was cancelled elsewhere). URLs
 * with "hold" in them are fetched until the signal aborts, then answer as the fetcher does.
 */
function fake (urls: string[], opts: { overAfter?: number, sliceMs?: number, now?: () => number, onFetch?: (url: string) => void, stopping?: () => boolean, context?: null } = {}): Fake {
  const calls: Fake['calls'] = []
  const reports: Fake['reports'] = []
  const fetched: string[] = []
  const waiting = new Map<string, (signal: AbortSignal) => void>()
  let next = 0
  const deps: LaneDeps = {
    async laneContext (jobId) {
      if (jobId !== DATA.jobId) throw new Error(`laneContext(${jobId})`)
      return opts.context === null ? null : { options: OPTIONS, tenant: TENANT }
    },
    async step (jobId, tenant, lane, finished, claim): Promise<StepReply> {
      if (jobId !== DATA.jobId || tenant !== TENANT || lane !== DATA.lane) throw new Error(`step(${jobId}, ${tenant}, ${lane})`)
      if (typeof claim !== 'boolean') throw new Error('claim hints without host rules')
      if (finished && !('result' in finished)) throw new Error('a park without host rules')
      calls.push([finished?.index ?? null, claim])
      if (finished) reports.push(finished)
      if (opts.overAfter !== undefined && reports.length >= opts.overAfter) return { kind: 'over' }
      if (!claim || next >= urls.length) return { kind: 'idle' }
      const index = next++
      return { kind: 'fetch', index, url: urls[index] as string, parked: null }
    },
    async fetch (url, options, signal) {
      if (options !== OPTIONS) throw new Error('fetch without the job\'s options')
      fetched.push(url)
      opts.onFetch?.(url)
      waiting.get(url)?.(signal)
      if (!url.includes('hold')) return page(url)
      if (!signal.aborted) await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))
      return page(url, CANCELLED_PAGE)
    },
    sliceMs: opts.sliceMs ?? 60_000,
    stopping: opts.stopping ?? (() => false),
    now: opts.now
  }
  return {
    deps,
    calls,
    reports,
    fetched,
    started: (url) => new Promise((resolve) => waiting.set(url, resolve))
  }
}

t.test('claims and fetches until the job has no URL left for the lane: done', async (t) => {
  const f = fake(['http://a.test/0', 'http://a.test/fail/1', 'http://a.test/2'])
  t.equal(await runLane(DATA, f.deps, new AbortController().signal), 'done')
  t.same(f.calls, [[null, true], [0, true], [1, true], [2, true]], 'each report claims the next URL, the last finds none')
  t.same(f.fetched, ['http://a.test/0', 'http://a.test/fail/1', 'http://a.test/2'])
  t.same(f.reports.map((r) => r.result.state), ['succeeded', 'failed', 'succeeded'])
})

t.test('over: the job ended elsewhere, the lane stops at once', async (t) => {
  const f = fake(['http://a.test/0', 'http://a.test/1', 'http://a.test/2'], { overAfter: 1 })
  t.equal(await runLane(DATA, f.deps, new AbortController().signal), 'done')
  t.same(f.calls, [[null, true], [0, true]])
  t.same(f.fetched, ['http://a.test/0'], 'nothing fetched after over')
})

t.test('a job gone from Redis: done without a step', async (t) => {
  const f = fake(['http://a.test/0'], { context: null })
  t.equal(await runLane(DATA, f.deps, new AbortController().signal), 'done')
  t.same(f.calls, [])
})

t.test('yield: after sliceMs (an injected clock) the lane reports without claiming and goes to the back', async (t) => {
  let clock = 1000
  const f = fake(Array.from({ length: 6 }, (_, i) => `http://a.test/${i}`), {
    sliceMs: 100,
    now: () => clock,
    onFetch: () => { clock += 40 }
  })
  t.equal(await runLane(DATA, f.deps, new AbortController().signal), 'yield')
  // Claims at 0, 40 and 80 ms into the slice; at 120 ms the third result is reported, no claim.
  t.same(f.calls, [[null, true], [0, true], [1, true], [2, false]])
  t.same(f.fetched, ['http://a.test/0', 'http://a.test/1', 'http://a.test/2'])
})

t.test('handback: stopping() turns true during a fetch; that result is reported, nothing more is claimed', async (t) => {
  let stopping = false
  const f = fake(['http://a.test/0', 'http://a.test/1', 'http://a.test/2'], {
    stopping: () => stopping,
    onFetch: (url) => { if (url.endsWith('/1')) stopping = true }
  })
  t.equal(await runLane(DATA, f.deps, new AbortController().signal), 'handback')
  t.same(f.calls, [[null, true], [0, true], [1, false]])
  t.same(f.fetched, ['http://a.test/0', 'http://a.test/1'])
})

t.test('handback: the signal aborts with ABORT_SHUTDOWN mid-fetch; the held URL is not reported', async (t) => {
  const f = fake(['http://a.test/0', 'http://a.test/hold/1', 'http://a.test/2'])
  const controller = new AbortController()
  const outcome = runLane(DATA, f.deps, controller.signal)
  await f.started('http://a.test/hold/1')
  controller.abort(ABORT_SHUTDOWN)
  t.equal(await outcome, 'handback')
  t.same(f.calls, [[null, true], [0, true]], 'index 1 stays held by the lane: no report, no claim')
  t.same(f.reports.map((r) => r.index), [0])
})

t.test('cancel: the signal aborts with ABORT_CANCELLED mid-fetch; done, without a report', async (t) => {
  const f = fake(['http://a.test/0', 'http://a.test/hold/1', 'http://a.test/2'])
  const controller = new AbortController()
  const outcome = runLane(DATA, f.deps, controller.signal)
  const signal = await f.started('http://a.test/hold/1')
  t.equal(signal, controller.signal, 'the fetch gets the lane\'s signal')
  controller.abort(ABORT_CANCELLED)
  t.equal(await outcome, 'done')
  t.same(f.calls, [[null, true], [0, true]], 'the cancel already counted index 1: it is not reported')
})

t.test('a signal aborted before the run: one step without claim, then handback or done by reason', async (t) => {
  for (const [reason, expected] of [[ABORT_SHUTDOWN, 'handback'], [ABORT_CANCELLED, 'done']] as const) {
    const f = fake(['http://a.test/0'])
    const controller = new AbortController()
    controller.abort(reason)
    t.equal(await runLane(DATA, f.deps, controller.signal), expected, reason)
    t.same(f.calls, [[null, false]], `${reason}: asks without claiming`)
    t.same(f.fetched, [], `${reason}: fetches nothing`)
  }
})

t.test('the reported result maps the PageResult fields', async (t) => {
  const fetchedPage = page('http://a.test/x', { finalUrl: 'http://a.test/y', contentType: 'text/html', bytes: 5, sha256: 'b'.repeat(64), attempts: 3, durationMs: 12.6 })
  const f = fake(['http://a.test/x'])
  f.deps.fetch = async () => fetchedPage
  await runLane(DATA, f.deps, new AbortController().signal)
  t.equal(f.reports.length, 1)
  t.same(f.reports[0], {
    index: 0,
    result: { state: 'succeeded', status: 200, finalUrl: 'http://a.test/y', contentType: 'text/html', bytes: 5, durationMs: 13, attempts: 3, error: null, hasContent: true, sha256: 'b'.repeat(64) }
  }, 'durationMs rounded, hasContent and sha256 from the stored body')

  t.same(toStoredResult(page('http://a.test/fail', { status: 404, durationMs: 0.4 })), {
    state: 'failed', status: 404, finalUrl: 'http://a.test/fail', contentType: 'text/plain', bytes: 0, durationMs: 0, attempts: 1, error: { code: 'HTTP_STATUS', message: 'HTTP 404' }, hasContent: false, sha256: null
  }, 'a failure keeps its error and has no content')
  t.equal(toStoredResult(page('http://a.test/ok', { sha256: null })).hasContent, false, 'a success with keepContent false has no content')
  t.equal(toStoredResult(page('http://a.test/ok', { ok: false, sha256: SHA })).hasContent, false, 'a body of a failure is never content')
})
