import { readFileSync } from 'node:fs'
import ipaddr from 'ipaddr.js'
import { z } from 'zod'
import { isUsableWebhookSecret } from './callbacks/sign.js'
import { checkContentConfig, contentConfigShape } from './content/config.js'
import { hostsConfigSchema } from './hosts/config.js'
import { metricsConfigShape } from './metrics/config.js'

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

/** One API key and the tenant it stands for. */
export interface ApiKey {
  tenant: string
  key: string
}

// `team-a:KEY1,team-b:KEY2` inline, or a path to a file with one `tenant:key` per line.
const apiKeys = z.string().optional().transform((raw, ctx): ApiKey[] => {
  if (raw === undefined) return []
  let text = raw
  if (!raw.includes(':') || raw.startsWith('/') || raw.startsWith('./')) {
    try {
      text = readFileSync(raw, 'utf8')
    } catch {
      ctx.addIssue({ code: 'custom', message: 'neither tenant:key pairs nor a readable file' })
      return []
    }
  }
  const keys: ApiKey[] = []
  for (const [i, entry] of text.split(/[,\n]/).map((x) => x.trim()).entries()) {
    if (entry === '' || entry.startsWith('#')) continue
    const colon = entry.indexOf(':')
    const tenant = entry.slice(0, colon)
    const key = entry.slice(colon + 1)
    // Never echo the key itself: this message reaches the terminal and logs.
    if (colon < 1 || !/^[A-Za-z0-9_.-]{1,64}$/.test(tenant)) {
      ctx.addIssue({ code: 'custom', message: `entry ${i + 1}: expected tenant:key with a tenant of letters, digits, _ . -` })
    } else if (key.length < 16 || /\s/.test(key)) {
      ctx.addIssue({ code: 'custom', message: `entry ${i + 1} (${tenant}): a key needs at least 16 characters and no spaces` })
    } else if (keys.some((k) => k.key === key)) {
      ctx.addIssue({ code: 'custom', message: `entry ${i + 1} (${tenant}): this key is already given to another entry` })
    } else {
      keys.push({ tenant, key })
    }
  }
  return keys
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
  CALLBACK_SECRET: z.string().min(16, 'at least 16 characters').refine(isUsableWebhookSecret, 'starts with whsec_ but the rest is not base64').optional(),
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
  /**
   * API keys: `tenant:key` pairs separated by commas, or the path of a file with one per line.
   * Unset: the API runs open (one tenant, `public`) and says so at start-up.
   */
  API_KEYS: apiKeys,
  /** Submissions (`POST /jobs`) each tenant may make per minute, across every API process. @defaultValue 120 */
  RATE_LIMIT_PER_MINUTE: int(1, 1_000_000).default(120),
  /** URLs a tenant may have accepted and not yet finished, across all its jobs. @defaultValue 100000 */
  MAX_PENDING_URLS_PER_TENANT: int(1, 100_000_000).default(100_000),
  /** Event-loop delay (ms) past which the API answers 503 rather than slowing everyone. @defaultValue 1000 */
  OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: int(0, 60_000).default(1000),
  /** Resident memory (MB) past which the API answers 503; 0 turns the check off. @defaultValue 0 */
  OVERLOAD_MAX_RSS_MB: int(0, 1_000_000).default(0),
  /** Milliseconds between comment lines on an idle event stream. @defaultValue 15000 */
  SSE_HEARTBEAT_MS: int(100, 60_000).default(15_000),
  /** Milliseconds a browser's EventSource waits before reconnecting (the stream's `retry:`). @defaultValue 2000 */
  SSE_RETRY_MS: int(100, 60_000).default(2000),
  /** Milliseconds the process waits for in-flight work on SIGTERM before handing it back. */
  SHUTDOWN_GRACE_MS: int(0, 600_000).default(10_000),
  // Each feature's rows live with the feature; this stays the only reader of the environment.
  ...contentConfigShape,
  ...hostsConfigSchema.shape,
  ...metricsConfigShape
}).superRefine(checkContentConfig)

export type Config = Readonly<Omit<z.infer<typeof configSchema>, 'FETCH_ALLOW_CIDRS' | 'API_KEYS' | 'ADMIN_API_KEYS'> & {
  FETCH_ALLOW_CIDRS: readonly string[]
  API_KEYS: readonly ApiKey[]
  ADMIN_API_KEYS: readonly string[]
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
