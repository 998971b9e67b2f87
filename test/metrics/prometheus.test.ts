import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { startServiceServer, type ServiceServer } from '../../src/http/service-server.js'
import { createMetrics } from '../../src/metrics/metrics.js'
import { freePort } from '../../src/redis/free-port.js'
import { requireBinary } from './tools.js'

const ADMIN_KEY = 'operator-key-0123456789abcdef'

async function serve (t: Test, role: 'api' | 'worker', adminKeys: string[]): Promise<ServiceServer> {
  const metrics = createMetrics({ role })
  metrics.urlFinished('succeeded', null)
  const server = await startServiceServer({ port: 0, registry: metrics.registry, adminKeys, ready: async () => true })
  t.teardown(() => server.close())
  return server
}

// A real prometheus, its config and storage in a temp dir, scraping every second.
async function startPrometheus (t: Test, targets: { api: ServiceServer, worker: ServiceServer }) {
  const binary = requireBinary('prometheus')
  const dir = await mkdtemp(join(tmpdir(), 'trawl-prometheus-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const config = `
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: trawl-api
    authorization: { type: Bearer, credentials: ${ADMIN_KEY} }
    static_configs: [{ targets: ['127.0.0.1:${targets.api.port}'] }]
  - job_name: trawl-worker
    static_configs: [{ targets: ['127.0.0.1:${targets.worker.port}'] }]
`
  await writeFile(join(dir, 'prometheus.yml'), config)
  const port = await freePort()
  const child = spawn(binary, [
    `--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`
  ], { stdio: ['ignore', 'ignore', 'pipe'] })
  let log = ''
  child.stderr.on('data', (c: Buffer) => { log = (log + c.toString()).slice(-4000) })
  const exited = once(child, 'exit')
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      await exited
    }
  })
  return { url: `http://127.0.0.1:${port}`, exited, log: () => log }
}

interface UpResult { metric: { job: string }, value: [number, string] }

async function upByJob (url: string): Promise<Record<string, string>> {
  try {
    const res = await fetch(`${url}/api/v1/query?query=up`)
    if (!res.ok) return {}
    const body = await res.json() as { data: { result: UpResult[] } }
    return Object.fromEntries(body.data.result.map((r) => [r.metric.job, r.value[1]]))
  } catch {
    return {} // not listening yet
  }
}

t.test('a real prometheus scrapes an API and a worker and reports both up', async (t) => {
  const api = await serve(t, 'api', [ADMIN_KEY])
  const worker = await serve(t, 'worker', [])
  const prometheus = await startPrometheus(t, { api, worker })
  const state = { died: false }
  prometheus.exited.then(() => { state.died = true }, () => {})

  // Prometheus scrapes on its own clock: ask until both targets are up, or the deadline passes.
  const deadline = Date.now() + 30_000
  let up: Record<string, string> = {}
  while (Date.now() < deadline && !state.died) {
    up = await upByJob(prometheus.url)
    if (up['trawl-api'] === '1' && up['trawl-worker'] === '1') break
    await delay(250)
  }
  if (!t.same(up, { 'trawl-api': '1', 'trawl-worker': '1' }, 'both targets up, the API scraped with its operator key')) t.comment(prometheus.log())

  const res = await fetch(`${prometheus.url}/api/v1/query?query=${encodeURIComponent('trawl_urls_finished_total')}`)
  const body = await res.json() as { data: { result: Array<{ metric: Record<string, string> }> } }
  t.same(body.data.result.map((r) => r.metric.role).sort(), ['api', 'worker'], 'each role\'s series, labelled by role')
})
