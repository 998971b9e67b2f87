import ipaddr from 'ipaddr.js'
import { z } from 'zod'

/**
 * The only reader of `process.env`. Every setting is parsed once, with defaults, and a bad value
 * stops the boot with a message that lists every problem at once.
 */

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max)

const cidrList = z.string().default('').transform((s, ctx) => {
  const items = s.split(',').map((x) => x.trim()).filter(Boolean)
  for (const item of items) {
    try {
      ipaddr.parseCIDR(item)
    } catch {
      ctx.addIssue({ code: 'custom', message: `not a CIDR range: ${item}` })
    }
  }
  return items
})

export const configSchema = z.object({
  /** API port. @defaultValue 3000 */
  PORT: int(0, 65535).default(3000),
  /** API bind address. @defaultValue 127.0.0.1 */
  HOST: z.string().min(1).default('127.0.0.1'),
  /** The Redis that holds queues, jobs and events. */
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  /** Prefix of every key the service writes (BullMQ's and its own). */
  REDIS_PREFIX: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only').default('trawl'),
  /** Fetches in flight per worker process. @defaultValue 50 */
  WORKER_CONCURRENCY: int(1, 5000).default(50),
  /** Largest batch accepted. @defaultValue 10000 */
  MAX_URLS_PER_JOB: int(1, 1_000_000).default(10_000),
  /** Seconds a finished job, its results, content and events are kept. @defaultValue 86400 */
  JOB_TTL_SECONDS: int(1, 365 * 86400).default(86_400),
  /** Address ranges the guard lets through, e.g. `127.0.0.0/8,::1/128`. */
  FETCH_ALLOW_CIDRS: cidrList,
  /** HMAC key for callbacks; without it `callbackUrl` is refused. */
  CALLBACK_SECRET: z.string().min(16, 'at least 16 characters').optional(),
  /** Deliveries of a callback tried in all before it is marked failed. @defaultValue 8 */
  CALLBACK_MAX_ATTEMPTS: int(1, 50).default(8),
  /** Milliseconds before the first callback retry; each later one doubles, with jitter. @defaultValue 2000 */
  CALLBACK_RETRY_BASE_MS: int(10, 3_600_000).default(2000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /**
   * Milliseconds a worker's lock on a lane lasts without renewal; a worker killed with `kill -9`
   * has its lanes taken over by another worker after about this long. @defaultValue 30000
   */
  WORKER_LOCK_MS: int(1000, 600_000).default(30_000),
  /**
   * Milliseconds a lane works on one job before it goes to the back of the queue, so that one
   * large job cannot hold every worker slot while small jobs wait. @defaultValue 2000
   */
  LANE_SLICE_MS: int(100, 600_000).default(2000),
  /** Milliseconds between comment lines on an idle event stream. @defaultValue 15000 */
  SSE_HEARTBEAT_MS: int(100, 60_000).default(15_000),
  /** Milliseconds the process waits for in-flight work on SIGTERM before handing it back. */
  SHUTDOWN_GRACE_MS: int(0, 600_000).default(10_000)
})

export type Config = Readonly<Omit<z.infer<typeof configSchema>, 'FETCH_ALLOW_CIDRS'> & {
  FETCH_ALLOW_CIDRS: readonly string[]
  /** True when REDIS_URL came from the environment rather than the default. */
  redisUrlGiven: boolean
}>

export class ConfigError extends Error {
  constructor (readonly issues: string[]) {
    super(`invalid configuration: ${issues.join('; ')}`)
    this.name = 'ConfigError'
  }
}

/** Parses an environment (process.env by default) into a frozen Config, or throws ConfigError. */
export function loadConfig (env: Record<string, string | undefined> = process.env, overrides: Partial<Record<keyof z.infer<typeof configSchema>, string>> = {}): Config {
  const source: Record<string, string | undefined> = {}
  for (const key of Object.keys(configSchema.shape)) {
    const value = overrides[key as keyof typeof overrides] ?? env[key]
    // An empty variable (FOO= in a compose file) means "not set", as most tools treat it.
    if (value !== undefined && value !== '') source[key] = value
  }
  const parsed = configSchema.safeParse(source)
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`))
  }
  return Object.freeze({ ...parsed.data, redisUrlGiven: source.REDIS_URL !== undefined })
}
