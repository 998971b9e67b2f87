import t from 'tap'
import { freePort } from '../../src/redis/free-port.js'
import { startGateServer } from '../helpers/gate-server.js'
import { testPrefix } from '../helpers/redis.js'
import { spawnTrawl, testEnv, waitForLog } from '../helpers/trawl.js'
import { promtoolCheck } from './tools.js'

// Every role's real /metrics, from real `trawl` processes, held to `promtool check metrics`;
// and a worker's /healthz and /readyz on METRICS_PORT.

const OPERATOR = 'operator-key-0123456789abcdef'

async function scrape (url: string, headers: Record<string, string> = {}): Promise<string> {
  const res = await fetch(url, { headers })
  if (res.status !== 200) throw new Error(`${url}: ${res.status}`)
  t.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/, `${url} is the text format`)
  return await res.text()
}

/** The value of one series, e.g. `trawl_lanes_running{role="worker"}`, whatever the order of its labels. */
function value (text: string, series: string): number | undefined {
  const key = (s: string) => {
    const m = /^([^{\s]+)(?:\{(.*)\})?$/.exec(s)
    return `${m?.[1] ?? s}{${(m?.[2] ?? '').split(',').filter(Boolean).sort().join(',')}}`
  }
  const wanted = key(series)
  for (const line of text.split('\n')) {
    const space = line.lastIndexOf(' ')
    if (!line.startsWith('#') && space > 0 && key(line.slice(0, space)) === wanted) return Number(line.slice(space + 1))
  }
  return undefined
}

async function finished (api: string, id: string): Promise<{ state: string }> {
  const res = await fetch(`${api}/jobs/${id}?wait=30&results=none`)
  return await res.json() as { state: string }
}

t.test('trawl worker and trawl api: each /metrics passes promtool and counts its half of a job', async (t) => {
  const gate = await startGateServer(3000)
  t.teardown(gate.close)
  const prefix = testPrefix(t, 'metrics')
  const [apiPort, metricsPort] = [await freePort(), await freePort()]
  const env = testEnv(prefix, { LOG_LEVEL: 'info', ADMIN_API_KEYS: OPERATOR, HOST: '127.0.0.1' })
  const worker = spawnTrawl(t, 'worker', { ...env, METRICS_PORT: String(metricsPort) })
  const api = spawnTrawl(t, 'api', { ...env, PORT: String(apiPort) })
  const listening = await waitForLog(worker, /worker endpoints listening/)
  t.equal(listening.address, `http://127.0.0.1:${metricsPort}`, 'the worker says where its endpoints are')
  await waitForLog(api, /trawl is up/)
  const apiUrl = `http://127.0.0.1:${apiPort}`
  const workerUrl = `http://127.0.0.1:${metricsPort}`

  for (const path of ['/healthz', '/readyz']) {
    const res = await fetch(`${workerUrl}${path}`)
    t.equal(res.status, 200, `worker ${path}`)
    t.same(await res.json(), { status: 'ok' })
  }

  const urls = [...Array.from({ length: 4 }, (_, i) => gate.url(`/fast/${i}`)), 'http://10.0.0.1/blocked']
  const post = await fetch(`${apiUrl}/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ urls, options: { retries: 0 } }) })
  const job = await post.json() as { id: string }
  t.equal((await finished(apiUrl, job.id)).state, 'completed')

  const workerText = await scrape(`${workerUrl}/metrics`)
  const apiText = await scrape(`${apiUrl}/metrics`, { authorization: `Bearer ${OPERATOR}` })
  for (const [role, text] of [['worker', workerText], ['api', apiText]] as const) {
    const lint = await promtoolCheck(text)
    t.equal(lint.code, 0, `promtool check metrics passes on the ${role}'s output ${lint.output}`)
    t.notMatch(text, /j_[0-9A-Z]{26}|127\.0\.0\.1|10\.0\.0\.1/, `no job id, URL or host in the ${role}'s labels`)
  }
  t.equal(value(workerText, 'trawl_urls_finished_total{state="succeeded",code="none",role="worker"}'), 4, 'the worker counts the URLs it fetched')
  t.equal(value(workerText, 'trawl_urls_finished_total{state="failed",code="BLOCKED_ADDRESS",role="worker"}'), 1, 'by error code')
  t.equal(value(workerText, 'trawl_fetch_duration_seconds_count{outcome="success",role="worker"}'), 4, 'fetch durations')
  t.equal(value(workerText, 'trawl_fetch_response_size_bytes_sum{outcome="success",role="worker"}'), 4 * 3000, 'and bytes')
  t.equal(value(workerText, 'trawl_job_transitions_total{state="completed",role="worker"}'), 1, 'the worker completed the job')
  t.equal(value(workerText, 'trawl_lanes_running{role="worker"}'), 0, 'no lane runs once the job is over')
  t.equal(value(apiText, 'trawl_job_transitions_total{state="queued",role="api"}'), 1, 'the API queued it')
  t.equal(value(apiText, 'trawl_queue_jobs{queue="fetch",state="active",role="api"}'), 0, 'the API reports queue depth')
  t.ok((value(apiText, 'trawl_redis_memory_bytes{kind="used",role="api"}') ?? 0) > 0, 'and Redis memory, from INFO')
  t.ok(Number.isFinite(value(apiText, 'trawl_redis_memory_bytes{kind="max",role="api"}')), 'with its maxmemory (0: none)')
  t.ok(value(apiText, 'process_resident_memory_bytes{role="api"}'), 'and the process defaults')
  t.equal((await fetch(`${apiUrl}/metrics`)).status, 401, 'the API\'s /metrics wants an operator key')
})

t.test('trawl all: one set of metrics, role all, on the API port', async (t) => {
  const gate = await startGateServer(1000)
  t.teardown(gate.close)
  const prefix = testPrefix(t, 'metrics-all')
  const port = await freePort()
  const all = spawnTrawl(t, 'all', testEnv(prefix, { LOG_LEVEL: 'info', PORT: String(port), HOST: '127.0.0.1' }))
  await waitForLog(all, /trawl is up/)
  const base = `http://127.0.0.1:${port}`
  const post = await fetch(`${base}/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ urls: [gate.url('/fast/a'), gate.url('/fast/b')] }) })
  const job = await post.json() as { id: string }
  t.equal((await finished(base, job.id)).state, 'completed')
  const text = await scrape(`${base}/metrics`)
  const lint = await promtoolCheck(text)
  t.equal(lint.code, 0, `promtool check metrics passes ${lint.output}`)
  t.equal(value(text, 'trawl_job_transitions_total{state="queued",role="all"}'), 1, 'the API half counts into it')
  t.equal(value(text, 'trawl_job_transitions_total{state="completed",role="all"}'), 1, 'and so does the worker half')
  t.equal(value(text, 'trawl_urls_finished_total{state="succeeded",code="none",role="all"}'), 2)
  t.equal(value(text, 'trawl_content_store_operation_duration_seconds_count{op="put",outcome="success",role="all"}'), 2, 'the bodies\' puts into the content store are timed')
  t.notMatch(text, /role="(api|worker)"/, 'no series of a single half')
})
