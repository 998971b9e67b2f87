import { spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { createMetrics } from '../../src/metrics/metrics.js'
import { requireBinary } from './tools.js'

// deploy/prometheus: the compose stack's Prometheus config and trawl's alerting rules, held to
// promtool, and every trawl_* name the rules use held to what the service exports.

const DIR = fileURLToPath(new URL('../../deploy/prometheus/', import.meta.url))

async function promtool (...args: string[]): Promise<{ code: number | null, output: string }> {
  const child = spawn(requireBinary('promtool'), args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (c: Buffer) => { output += c.toString() })
  child.stderr.on('data', (c: Buffer) => { output += c.toString() })
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', resolve)
  })
  return { code, output }
}

t.test('promtool: the rules, the config that loads them, and the rules\' unit tests pass', async (t) => {
  for (const args of [['check', 'rules', `${DIR}alerts.yml`], ['check', 'config', `${DIR}prometheus.yml`], ['test', 'rules', fileURLToPath(new URL('alerts.promtool.yml', import.meta.url))]]) {
    const { code, output } = await promtool(...args)
    t.equal(code, 0, `promtool ${args.slice(0, 2).join(' ')}: ${output.trim()}`)
  }
})

t.test('every trawl_* metric the rules name is one the service exports', async (t) => {
  const rules = await readFile(`${DIR}alerts.yml`, 'utf8')
  const named = new Set(rules.match(/\btrawl_[a-z_]+/g) ?? [])
  t.ok(named.size >= 6, `the rules name trawl's metrics (${[...named].join(', ')})`)
  const metrics = createMetrics({ role: 'api', processDefaults: false })
  const exported = new Set((await metrics.registry.getMetricsAsJSON()).map((m) => m.name))
  for (const name of named) t.ok(exported.has(name), `${name} is exported`)
  t.match(rules, /job="trawl-worker"/, 'the worker job name is the one prometheus.yml scrapes')
  t.match(await readFile(`${DIR}prometheus.yml`, 'utf8'), /job_name: trawl-worker/)
})
