/**
 * A lane that fails while it holds a slot on a host (Redis refuses its next step; robots.txt
 * cannot be read) gives the slot back, on a real gate and real slots in Redis: the gate renews
 * every slot it holds, so a slot the lane forgot would keep its host short for good.
 */
import t from 'tap'
import type { PageResult } from '../../src/fetcher/fetch-page.js'
import { createPoliteness } from '../../src/hosts/politeness.js'
import type { Robots } from '../../src/hosts/robots.js'
import { DEFAULT_OPTIONS, type JobOptions } from '../../src/jobs/schemas.js'
import type { StepReply } from '../../src/jobs/store.js'
import { runLane, type LaneDeps } from '../../src/lanes/lane.js'
import { testPrefix } from '../helpers/redis.js'
import { worker } from './helpers.js'

const HOST = 'lane-failure.test'
const CAP = 2

const page = (url: string): PageResult => ({ ok: true, status: 200, finalUrl: url, contentType: 'text/plain', bytes: 2, sha256: null, error: null, attempts: 1, durationMs: 1 })

/** Runs one lane on a gate of its own (leases of 400 ms, renewed while held) until it throws. */
async function laneOn (t: Tap.Test, options: JobOptions, robots: Robots, step: LaneDeps['step']) {
  const { gate } = await worker(t, testPrefix(t, 'lanefail'), 400)
  const hosts = createPoliteness({ gate: Promise.resolve(gate), robots, hostConcurrency: CAP, hostDelayMs: 0 })
  const deps: LaneDeps = { laneContext: async () => ({ options, tenant: 'team-a' }), step, fetch: async (url) => page(url), hosts, sliceMs: 60_000, stopping: () => false }
  const run = runLane({ jobId: 'j_01JFFFFFFFFFFFFFFFFFFFFFFF', lane: 0 } as Parameters<typeof runLane>[0], deps, new AbortController().signal)
  return { run, gate }
}

const claim = (index: number): StepReply => ({ kind: 'fetch', index, url: `http://${HOST}/${index}`, parked: null })

const allowAll: Robots = { allowed: async () => ({ allowed: true, crawlDelayMs: 0, source: 'fetched' }) } as unknown as Robots

t.test('a step that fails after a fetch gives back the slot the lane kept for its next URL', async (t) => {
  let steps = 0
  const { run, gate } = await laneOn(t, { ...DEFAULT_OPTIONS }, allowAll, async () => {
    if (steps++ === 0) return claim(0)
    throw new Error('LOADING Redis is loading the dataset in memory')
  })
  await t.rejects(run, /LOADING/)
  t.equal(gate.held, 0, 'the gate holds no slot for the failed lane')
  // The host's whole cap can be taken again, at once (not after a lease lapses: it would not).
  const first = await gate.tryEnter(HOST, { limit: CAP, delayMs: 0 })
  const second = await gate.tryEnter(HOST, { limit: CAP, delayMs: 0 })
  t.ok(first.lease !== null && second.lease !== null, `both of the host's ${CAP} slots are free`)
})

t.test('robots.txt that cannot be read, with a slot kept: the slot is given back', async (t) => {
  let asks = 0
  // The first URL's check passes; the second claim (a URL on the same host, the kept slot
  // with it) meets a robots.txt read that throws, as a Redis refusing the cache read would.
  const flaky: Robots = { allowed: async () => { if (asks++ === 0) return { allowed: true, crawlDelayMs: 0, source: 'fetched' }; throw new Error('READONLY You can\'t write against a read only replica') } } as unknown as Robots
  let steps = 0
  const { run, gate } = await laneOn(t, { ...DEFAULT_OPTIONS, robots: 'obey' }, flaky, async () => claim(steps++))
  await t.rejects(run, /READONLY/)
  t.equal(gate.held, 0, 'the gate holds no slot for the failed lane')
})

declare namespace Tap { type Test = import('tap').Test }
