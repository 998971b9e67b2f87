import { collectDefaultMetrics, Counter, exponentialBuckets, Gauge, Histogram, Registry } from 'prom-client'
import type { JobState } from '../jobs/schemas.js'
import type { ResultErrorCode as ErrorCode } from '../jobs/result-codes.js'

/**
 * The service's Prometheus metrics, in Prometheus naming conventions (`trawl_` prefix, `_total`
 * counters, base units in `_seconds` and `_bytes`). Every label has a small, fixed set of
 * values (states, error codes, outcomes, operations, the role): never a URL, job id, host or
 * tenant key, so the number of series stays bounded whatever the traffic.
 *
 * Each call to {@link createMetrics} owns its own Registry (never prom-client's global one), so
 * two roles in one process do not collide. `trawl all` creates one with role `all` and hands it
 * to both roles.
 */

/** Which process the numbers come from; every series carries it as the `role` label. */
export type MetricsRole = 'api' | 'worker' | 'all'
/** A URL's final state. */
export type UrlFinalState = 'succeeded' | 'failed' | 'cancelled'
/** How one URL's fetch ended: a 2xx read whole, or not. */
export type FetchOutcome = 'success' | 'error'
/**
 * How one callback attempt ended: a 2xx; another status (3xx included, redirects are not
 * followed); no answer (timeout, reset, DNS); or refused by the address guard.
 */
export type CallbackOutcome = 'success' | 'http_error' | 'network_error' | 'blocked'
/** The content store's operations. */
export type ContentOp = 'put' | 'get' | 'head' | 'delete' | 'list'
/** How a content-store operation ended. */
export type ContentOutcome = 'success' | 'not_found' | 'error'
/** Job counts by BullMQ state, as `Queue.getJobCounts()` answers. */
export type QueueCounts = () => Promise<Record<string, number>>

export interface MetricsOptions {
  role: MetricsRole
  /** Collect prom-client's process and Node.js defaults (`process_*`, `nodejs_*`). @defaultValue true */
  processDefaults?: boolean
  /**
   * Milliseconds a scrape waits for a source (queue counts, paused hosts) before leaving its
   * gauge empty for that scrape, so a slow Redis never hangs `/metrics`. @defaultValue 2000
   */
  sourceTimeoutMs?: number
}

export interface Metrics {
  /** The registry `/metrics` renders (`registry.metrics()`, `registry.contentType`). */
  readonly registry: Registry
  /** `count` URLs (default 1) reached a final state; `code` is their error code, null when none. */
  urlFinished (state: UrlFinalState, code: ErrorCode | null, count?: number): void
  /**
   * One URL's fetch ended after `seconds` (its retries and their waits included), having read
   * `bytes` of body on its last attempt (0 when none).
   */
  fetchDone (outcome: FetchOutcome, seconds: number, bytes: number): void
  /** A job entered a state (`queued` on submit, `running`, then a final one). */
  jobEntered (state: JobState): void
  /** A lane began working on a job; pair with {@link Metrics.laneEnded}. */
  laneStarted (): void
  /** A lane stopped (its slice ended, the job finished, or it failed). */
  laneEnded (): void
  /** A host was paused for everyone after a 429 or 503 (with Retry-After, or repeated). */
  hostPaused (status: 429 | 503): void
  /** One callback delivery attempt ended. */
  callbackAttempt (outcome: CallbackOutcome): void
  /** A callback reached its final state. */
  callbackFinished (state: 'delivered' | 'failed'): void
  /** An event-stream (SSE) client connected; pair with {@link Metrics.subscriberClosed}. */
  subscriberOpened (): void
  /** An event-stream client went away or its stream ended. */
  subscriberClosed (): void
  /** One content-store operation ended after `seconds`. */
  contentOp (op: ContentOp, outcome: ContentOutcome, seconds: number): void
  /** Runs a content-store operation and records it; a rejection counts as `error`. */
  timeContentOp<T> (op: ContentOp, run: () => Promise<T>, outcomeOf?: (value: T) => ContentOutcome): Promise<T>
  /** Reports a BullMQ queue's depth on every scrape, as `trawl_queue_jobs{queue,state}`. */
  observeQueue (queue: string, counts: QueueCounts): void
  /** Reports how many hosts are paused right now, on every scrape. */
  observePausedHosts (count: () => Promise<number>): void
  /** Reports Redis' memory use and its `maxmemory` (0: no limit) in bytes, on every scrape. */
  observeRedisMemory (read: () => Promise<RedisMemory>): void
}

/** What Redis' `INFO memory` says of its memory, in bytes. */
export interface RedisMemory { used: number, max: number }

const DURATION_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]
// 1 KiB to 256 MiB, by fours.
const SIZE_BUCKETS = exponentialBuckets(1024, 4, 10)
const STORE_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/** The outcome label for one callback attempt, from its delivery result. */
export function callbackOutcome (d: { ok: boolean, status: number | null, retryable: boolean }): CallbackOutcome {
  if (d.ok) return 'success'
  if (d.status !== null) return 'http_error'
  return d.retryable ? 'network_error' : 'blocked'
}

async function within<T> (ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([work, late])
  } finally {
    clearTimeout(timer)
  }
}

function counters (registers: Registry[]) {
  return {
    urls: new Counter({ name: 'trawl_urls_finished_total', help: 'URLs that reached a final state, by state and error code (none when it has none).', labelNames: ['state', 'code'] as const, registers }),
    jobs: new Counter({ name: 'trawl_job_transitions_total', help: 'Jobs that entered each state.', labelNames: ['state'] as const, registers }),
    pauses: new Counter({ name: 'trawl_host_pauses_total', help: 'Times a host was paused for everyone, by the status that caused it.', labelNames: ['status'] as const, registers }),
    attempts: new Counter({ name: 'trawl_callback_attempts_total', help: 'Callback delivery attempts, by outcome.', labelNames: ['outcome'] as const, registers }),
    callbacks: new Counter({ name: 'trawl_callbacks_finished_total', help: 'Callbacks that reached a final state.', labelNames: ['state'] as const, registers })
  }
}

function histograms (registers: Registry[]) {
  return {
    fetchSeconds: new Histogram({ name: 'trawl_fetch_duration_seconds', help: 'Time one URL\'s fetch took, headers, body and retries.', labelNames: ['outcome'] as const, buckets: DURATION_BUCKETS, registers }),
    fetchBytes: new Histogram({ name: 'trawl_fetch_response_size_bytes', help: 'Body bytes the last attempt of one URL\'s fetch read.', labelNames: ['outcome'] as const, buckets: SIZE_BUCKETS, registers }),
    store: new Histogram({ name: 'trawl_content_store_operation_duration_seconds', help: 'Content-store operations and the time they took, by operation and outcome.', labelNames: ['op', 'outcome'] as const, buckets: STORE_BUCKETS, registers })
  }
}

// prom-client's defaults, less three gauges whose `_total` names break the naming rules (promtool
// refuses them); each is the sum of its by-type sibling, e.g. `sum(nodejs_active_handles)`.
const MISNAMED_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']

function processDefaults (registry: Registry) {
  collectDefaultMetrics({ register: registry })
  for (const name of MISNAMED_DEFAULTS) registry.removeSingleMetric(name)
}

// Gauges read on scrape from sources the roles hand over once they exist.
function sourceGauges (registers: Registry[], timeoutMs: number) {
  const queues = new Map<string, QueueCounts>()
  const sources: { pausedHosts?: () => Promise<number>, redisMemory?: () => Promise<RedisMemory> } = {}
  const queueJobs = new Gauge({
    name: 'trawl_queue_jobs',
    help: 'Jobs in each BullMQ queue by state, read on scrape.',
    labelNames: ['queue', 'state'] as const,
    registers,
    async collect () {
      this.reset()
      await Promise.all([...queues].map(async ([queue, counts]) => {
        // A source that fails leaves its series out of this scrape rather than failing it.
        const byState = await within(timeoutMs, counts()).catch(() => ({}))
        for (const [state, n] of Object.entries(byState)) this.set({ queue, state }, n)
      }))
    }
  })
  const hostsPaused = new Gauge({
    name: 'trawl_hosts_paused',
    help: 'Hosts paused for everyone right now, read on scrape.',
    registers,
    async collect () {
      if (sources.pausedHosts === undefined) return
      // Unknown, not zero, when the source does not answer (a gauge without labels always shows).
      this.set(await within(timeoutMs, sources.pausedHosts()).catch(() => Number.NaN))
    }
  })
  return { queues, sources, gauges: [queueJobs, hostsPaused, redisMemoryGauge(registers, timeoutMs, sources)] }
}

// Redis' memory, read on scrape; left out of a scrape whose source does not answer.
function redisMemoryGauge (registers: Registry[], timeoutMs: number, sources: { redisMemory?: () => Promise<RedisMemory> }) {
  return new Gauge({
    name: 'trawl_redis_memory_bytes',
    help: 'Redis memory in bytes, read on scrape: used, and the maxmemory limit (0: none).',
    labelNames: ['kind'] as const,
    registers,
    async collect () {
      this.reset()
      if (sources.redisMemory === undefined) return
      const memory = await within(timeoutMs, sources.redisMemory()).catch(() => null)
      if (memory === null) return
      this.set({ kind: 'used' }, memory.used)
      this.set({ kind: 'max' }, memory.max)
    }
  })
}

// Metrics.timeContentOp over a recorder of content-store operations.
function contentTimer (record: (op: ContentOp, outcome: ContentOutcome, seconds: number) => void): Metrics['timeContentOp'] {
  return async (op, run, outcomeOf) => {
    const started = performance.now()
    const done = (outcome: ContentOutcome) => record(op, outcome, (performance.now() - started) / 1000)
    try {
      const value = await run()
      done(outcomeOf?.(value) ?? 'success')
      return value
    } catch (err) {
      done('error')
      throw err
    }
  }
}

/** Creates the metrics of one role, with a registry of its own. */
export function createMetrics (opts: MetricsOptions): Metrics {
  const registry = new Registry()
  registry.setDefaultLabels({ role: opts.role })
  if (opts.processDefaults ?? true) processDefaults(registry)
  const registers = [registry]
  const c = counters(registers)
  const h = histograms(registers)
  const lanes = new Gauge({ name: 'trawl_lanes_running', help: 'Lanes working on a job in this process.', registers })
  const subscribers = new Gauge({ name: 'trawl_event_subscribers', help: 'Event-stream (SSE) clients connected to this process.', registers })
  const { queues, sources } = sourceGauges(registers, opts.sourceTimeoutMs ?? 2000)
  const contentOp = (op: ContentOp, outcome: ContentOutcome, seconds: number) => h.store.observe({ op, outcome }, seconds)
  return {
    registry,
    urlFinished: (state, code, count = 1) => c.urls.inc({ state, code: code ?? 'none' }, count),
    fetchDone (outcome, seconds, bytes) {
      h.fetchSeconds.observe({ outcome }, seconds)
      h.fetchBytes.observe({ outcome }, bytes)
    },
    jobEntered: (state) => c.jobs.inc({ state }),
    laneStarted: () => lanes.inc(),
    laneEnded: () => lanes.dec(),
    hostPaused: (status) => c.pauses.inc({ status: String(status) }),
    callbackAttempt: (outcome) => c.attempts.inc({ outcome }),
    callbackFinished: (state) => c.callbacks.inc({ state }),
    subscriberOpened: () => subscribers.inc(),
    subscriberClosed: () => subscribers.dec(),
    contentOp,
    timeContentOp: contentTimer(contentOp),
    observeQueue: (queue, counts) => { queues.set(queue, counts) },
    observePausedHosts: (count) => { sources.pausedHosts = count },
    observeRedisMemory: (read) => { sources.redisMemory = read }
  }
}
