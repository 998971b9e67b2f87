import { Queue } from 'bullmq'
import t from 'tap'
import { callbackOutcome, createMetrics, type Metrics } from '../../src/metrics/metrics.js'
import { TEST_REDIS_URL, testPrefix } from '../helpers/redis.js'
import { promtoolCheck } from './tools.js'

// A little of every family, with labels, as a busy worker would have seen.
function exercise (m: Metrics) {
  m.urlFinished('succeeded', null)
  m.urlFinished('failed', 'TIMEOUT')
  m.urlFinished('cancelled', 'CANCELLED')
  m.fetchDone('success', 0.12, 48_000)
  m.fetchDone('error', 10, 0)
  m.jobEntered('queued')
  m.jobEntered('running')
  m.jobEntered('completed')
  m.laneStarted()
  m.laneStarted()
  m.laneEnded()
  m.hostPaused(429)
  m.callbackAttempt('http_error')
  m.callbackAttempt('success')
  m.callbackFinished('delivered')
  m.subscriberOpened()
  m.contentOp('put', 'success', 0.004)
  m.contentOp('get', 'not_found', 0.001)
  m.observePausedHosts(async () => 2)
}

// Every label of every trawl_ series in a scrape, by family.
function labelsByFamily (text: string): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>()
  for (const line of text.split('\n')) {
    const m = /^(trawl_[a-z_]+?)(?:_bucket|_sum|_count)?\{([^}]*)\}/.exec(line)
    if (m === null) continue
    const names = out.get(m[1] as string) ?? new Set()
    for (const pair of (m[2] as string).split(/,(?=[a-z_]+=")/)) names.add(pair.split('=')[0] as string)
    out.set(m[1] as string, names)
  }
  return out
}

function sample (text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.split(' ')[1])
}

t.test('promtool check metrics passes on a registry that has seen every family', async (t) => {
  const prefix = testPrefix(t, 'metrics')
  const queue = new Queue('fetch', { connection: { url: TEST_REDIS_URL }, prefix })
  t.teardown(() => queue.close())
  await queue.add('url', { n: 1 })
  const m = createMetrics({ role: 'worker' })
  exercise(m)
  m.observeQueue('fetch', () => queue.getJobCounts('waiting', 'active', 'delayed', 'failed'))
  const text = await m.registry.metrics()
  const check = await promtoolCheck(text)
  t.equal(check.code, 0, `promtool: ${check.output}`)

  t.equal(sample(text, 'trawl_urls_finished_total{state="failed",code="TIMEOUT",role="worker"}'), 1)
  t.equal(sample(text, 'trawl_urls_finished_total{state="succeeded",code="none",role="worker"}'), 1)
  t.equal(sample(text, 'trawl_queue_jobs{queue="fetch",state="waiting",role="worker"}'), 1, 'queue depth read from BullMQ on scrape')
  t.equal(sample(text, 'trawl_lanes_running{role="worker"}'), 1)
  t.equal(sample(text, 'trawl_hosts_paused{role="worker"}'), 2)
  t.equal(sample(text, 'trawl_fetch_response_size_bytes_sum{role="worker",outcome="success"}'), 48_000)
  t.match(text, /^process_cpu_seconds_total\{role="worker"\} /m, 'process defaults are there')

  const allowed = new Set(['role', 'state', 'code', 'outcome', 'status', 'queue', 'op', 'le'])
  const families = labelsByFamily(text)
  t.ok(families.size >= 12, `every family has a sample (${[...families.keys()].join(', ')})`)
  for (const [family, names] of families) {
    for (const name of names) t.ok(allowed.has(name), `${family} has only bounded labels (${name})`)
  }
})

t.test('a failing or hanging source leaves its gauge out; the scrape still answers', async (t) => {
  const m = createMetrics({ role: 'api', processDefaults: false, sourceTimeoutMs: 50 })
  m.observeQueue('fetch', async () => { throw new Error('Redis is away') })
  m.observeQueue('callback', () => new Promise(() => {}))
  m.observePausedHosts(() => new Promise(() => {}))
  const text = await m.registry.metrics()
  t.notMatch(text, /^trawl_queue_jobs\{/m)
  t.match(text, /^trawl_hosts_paused\{role="api"\} nan$/im, 'unknown, not zero')
  t.match(text, /# TYPE trawl_queue_jobs gauge/)
  t.equal((await promtoolCheck(text)).code, 0)
})

t.test('two roles in one process keep registries of their own', async (t) => {
  const api = createMetrics({ role: 'api' })
  const worker = createMetrics({ role: 'worker' })
  api.subscriberOpened()
  worker.urlFinished('succeeded', null)
  const [a, w] = await Promise.all([api.registry.metrics(), worker.registry.metrics()])
  t.equal(sample(a, 'trawl_event_subscribers{role="api"}'), 1)
  t.notMatch(a, /trawl_urls_finished_total\{/)
  t.equal(sample(w, 'trawl_urls_finished_total{state="succeeded",code="none",role="worker"}'), 1)
  t.equal(sample(w, 'trawl_event_subscribers{role="worker"}'), 0)
})

t.test('timeContentOp records the outcome and the time, and passes rejections on', async (t) => {
  const m = createMetrics({ role: 'worker', processDefaults: false })
  t.equal(await m.timeContentOp('get', async () => null, (v) => (v === null ? 'not_found' : 'success')), null)
  await t.rejects(m.timeContentOp('put', async () => { throw new Error('disk full') }), /disk full/)
  const text = await m.registry.metrics()
  t.equal(sample(text, 'trawl_content_store_operation_duration_seconds_count{role="worker",op="get",outcome="not_found"}'), 1)
  t.equal(sample(text, 'trawl_content_store_operation_duration_seconds_count{role="worker",op="put",outcome="error"}'), 1)
})

t.test('callbackOutcome maps a delivery to its label', async (t) => {
  t.equal(callbackOutcome({ ok: true, status: 204, retryable: false }), 'success')
  t.equal(callbackOutcome({ ok: false, status: 307, retryable: true }), 'http_error')
  t.equal(callbackOutcome({ ok: false, status: null, retryable: true }), 'network_error')
  t.equal(callbackOutcome({ ok: false, status: null, retryable: false }), 'blocked')
})
