/**
 * Event-stream fan-out: 1,000 SSE subscribers on one job of 1,000 URLs, all on one API process.
 * Every subscriber must receive every event; the lag of a `result` event is the time from its
 * write in Redis (the stream id's milliseconds) to its arrival here. Prints p50/p99 lag and the
 * API's peak RSS.
 *
 *   node --import tsx bench/sse.ts [--subscribers=1000] [--urls=1000]
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Redis } from 'ioredis'
import { Agent, request } from 'undici'
import { removePrefix } from './lib/redis-clean.js'

const arg = (name: string, fallback: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback)
const SUBSCRIBERS = arg('subscribers', 1000)
const URLS = arg('urls', 1000)
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const PREFIX = `bench-sse-${process.pid}`

function peakRss (pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) * 1024 : 0
}

function start (role: string, env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', role], {
    env: { PATH: process.env.PATH ?? '', REDIS_URL, REDIS_PREFIX: PREFIX, FETCH_ALLOW_CIDRS: '127.0.0.0/8', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  children.push(child)
  return child
}

function logLine (child: ChildProcess, msg: RegExp): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let buf = ''
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString()
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        try {
          const entry = JSON.parse(line) as Record<string, unknown>
          if (typeof entry.msg === 'string' && msg.test(entry.msg)) resolve(entry)
        } catch {}
      }
    })
    child.once('exit', () => reject(new Error('exited early')))
  })
}

let stopping = false
// Children die with the bench, also when it fails half-way.
const children: ChildProcess[] = []
process.on('exit', () => { for (const c of children) if (c.exitCode === null) c.kill('SIGKILL') })

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN

async function main () {
  // Targets answer after 5 ms, so the job lasts a while and events arrive spread out.
  const body = Buffer.alloc(2000, 'x')
  const target = createServer((_req, res) => { setTimeout(() => res.end(body), 5) })
  target.keepAliveTimeout = 5000
  await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve))
  const targetPort = (target.address() as AddressInfo).port

  const api = start('api', { PORT: '0' })
  const base = String((await logLine(api, /trawl is up/)).address)
  const apiPid = api.pid as number
  api.once('exit', (code, signal) => { if (!stopping) process.stderr.write(`API exited (${code ?? signal})\n`) })

  const agent = new Agent({ connections: SUBSCRIBERS + 10, pipelining: 0 })
  const urls = Array.from({ length: URLS }, (_, i) => `http://127.0.0.1:${targetPort}/p/${i}`)
  // No worker runs yet: the job stays queued until every subscriber has its snapshot, so every
  // result event is measured live, not replayed from history.
  const rssBefore = peakRss(apiPid)
  const submit = await request(`${base}/jobs`, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ urls, options: { concurrency: 50, keepContent: false } })
  })
  const job = await submit.body.json() as { id: string }

  const lags: number[] = []
  let complete = 0
  let failed = 0
  let connected = 0
  let allConnected: () => void = () => {}
  const ready = new Promise<void>((resolve) => { allConnected = resolve })
  const subscribers = Array.from({ length: SUBSCRIBERS }, async () => {
    const res = await request(`${base}/jobs/${job.id}/events`, { dispatcher: agent, headers: { accept: 'text/event-stream' }, bodyTimeout: 0 })
    let snapshot = false
    let buf = ''
    let results = 0
    // Cheap parsing, so the client's own CPU does not pass for server lag: whole events only
    // (up to the last blank line), result ids found with one regex per chunk.
    for await (const chunk of res.body) {
      const now = Date.now()
      buf += chunk.toString()
      const cut = buf.lastIndexOf('\n\n')
      if (cut < 0) continue
      const whole = buf.slice(0, cut)
      buf = buf.slice(cut + 2)
      if (!snapshot && whole.includes('id: 0-0\n')) {
        snapshot = true
        if (++connected === SUBSCRIBERS) allConnected()
      }
      for (const m of whole.matchAll(/id: (\d+)-\d+\nevent: result/g)) {
        results++
        lags.push(now - Number(m[1]))
      }
    }
    if (results === URLS) complete++
  }).map((p) => p.catch((err: unknown) => {
    failed++
    if (failed === 1) process.stderr.write(`a subscriber failed: ${String(err)}\n`)
    if (++connected === SUBSCRIBERS) allConnected()
  }))
  await ready
  const worker = start('worker', { WORKER_CONCURRENCY: '50' })
  await logLine(worker, /worker started/)
  const started = Date.now()
  await Promise.all(subscribers)
  const elapsed = Date.now() - started
  const rss = peakRss(apiPid)

  lags.sort((a, b) => a - b)
  process.stdout.write([
    `subscribers: ${SUBSCRIBERS}, URLs: ${URLS}, every event to every subscriber: ${complete === SUBSCRIBERS ? 'yes' : `NO (${complete}/${SUBSCRIBERS}, ${failed} failed)`}`,
    `events delivered: ${lags.length} result events in ${(elapsed / 1000).toFixed(2)} s`,
    `lag (write -> arrival): p50 ${quantile(lags, 0.5)} ms, p99 ${quantile(lags, 0.99)} ms, max ${lags[lags.length - 1]} ms  (goal p99 < 250 ms: ${quantile(lags, 0.99) < 250 ? 'PASS' : 'MISS'})`,
    `API peak RSS: ${(rss / 1048576).toFixed(0)} MB (before the run: ${(rssBefore / 1048576).toFixed(0)} MB)`
  ].join('\n') + '\n')

  stopping = true
  api.kill('SIGTERM')
  worker.kill('SIGTERM')
  await Promise.all([once(api, 'exit'), once(worker, 'exit')])
  await agent.close()
  target.closeAllConnections()
  target.close()
  const redis = new Redis(REDIS_URL)
  await removePrefix(redis, PREFIX)
  redis.disconnect()
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`)
  process.exit(1)
})
