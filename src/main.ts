#!/usr/bin/env node
import type { Logger } from 'pino'
import type { StartupHold } from './logger.js'
import { ConfigError, loadConfig, type Config } from './config.js'

/**
 * The entry point: `trawl api`, `trawl worker` or `trawl all` (API and worker in one process,
 * what `npm start` runs). The only file with side effects at start-up.
 */
const USAGE = 'usage: trawl <api|worker|all>\n       trawl <get|status|watch|cancel> ... (trawl get --help)'
const CLIENT_COMMANDS = new Set(['get', 'status', 'watch', 'cancel'])
const ROLES = ['api', 'worker', 'all'] as const
type Role = typeof ROLES[number]

/** The role argv names (`all` when it names none), `help`, or what makes it a usage error. */
function parseRole (argv: string[]): Role | 'help' | { usageError: string } {
  const [first = 'all', ...rest] = argv
  if (first === '-h' || first === '--help') return 'help'
  const role = ROLES.find((r) => r === first)
  if (role === undefined) return { usageError: `unknown command ${JSON.stringify(first)}` }
  if (rest.length > 0) return { usageError: `unexpected argument ${JSON.stringify(rest[0])} after ${role}` }
  return role
}

async function main (argv: string[]): Promise<void> {
  if (CLIENT_COMMANDS.has(argv[0] ?? '')) {
    // The command-line client: it talks to a server over HTTP and needs no config of its own.
    const { runCli } = await import('./cli/index.js')
    // eslint-disable-next-line n/no-process-env -- the client reads only TRAWL_SERVER and TRAWL_API_KEY, not the service's config
    process.exitCode = await runCli(argv, { stdout: process.stdout, stderr: process.stderr, env: process.env })
    return
  }
  const role = parseRole(argv)
  if (role === 'help') {
    process.stdout.write(`${USAGE}\n`)
    return
  }
  if (typeof role !== 'string') return fail(2, `${role.usageError}\n${USAGE}`)
  let config: Config
  try {
    config = loadConfig()
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    return fail(2, err.message)
  }
  await serve(role, config)
}

/**
 * Starts the role's parts, then closes them in reverse order on SIGTERM/SIGINT. Lines logged
 * while starting are held until the API listens, so that the first line on the terminal says
 * where the service is (logger.ts startupHold); errors are never held.
 */
async function serve (role: Role, config: Config): Promise<void> {
  // The server stack loads only for the server roles, so the client starts quickly.
  const [{ default: closeWithGrace }, { createLogger, startupHold }] = await Promise.all([import('close-with-grace'), import('./logger.js')])
  const hold = startupHold()
  const logger = createLogger(config, process.stdout, hold)
  const closers: Array<() => Promise<void>> = []
  try {
    const redis = await redisFor(role, config, logger, closers)
    if (redis === null) return
    config = redis
    await startRoles(role, config, logger, hold, closers)
  } catch (err) {
    // What started is stopped before the error ends the process: a Redis of our own would
    // outlive it (port in use, a bad S3 bucket, ...), and every retry would start another.
    for (const close of closers) await close().catch(() => {})
    throw err
  } finally {
    hold.release()
  }
  // SIGTERM/SIGINT: stop taking requests, let in-flight fetches finish or hand them back, exit.
  closeWithGrace({ delay: config.SHUTDOWN_GRACE_MS + 10_000, logger }, async ({ err, signal }) => {
    if (err) logger.error({ err }, 'fatal error, shutting down')
    else logger.info({ signal }, 'shutting down')
    for (const close of closers) await close()
  })
}

/** The API (which tells where it is, first), then the worker; each close joins `closers`. */
async function startRoles (role: Role, config: Config, logger: Logger, hold: StartupHold, closers: Array<() => Promise<void>>): Promise<void> {
  const [{ logWhereabouts }, { startApi }, { startWorker, startWorkerEndpoints }, { createMetrics }, { createContentStore, contentStoreOptions }] = await Promise.all([
    import('./logger.js'), import('./roles/api.js'), import('./roles/worker.js'), import('./metrics/metrics.js'), import('./content/index.js')
  ])
  // One set of metrics per process: `trawl all` counts both halves into one, served on the API's port.
  const metrics = createMetrics({ role })
  // `trawl all`: the API and the worker share one content store (one set of clients), closed last.
  const content = role === 'all' ? createContentStore(contentStoreOptions(config)) : undefined
  if (content !== undefined) closers.unshift(() => content.close())
  if (role !== 'worker') {
    const api = await startApi(config, logger, { metrics, content })
    closers.unshift(api.close)
    const address = await api.app.listen({ port: config.PORT, host: config.HOST })
    hold.release(() => logWhereabouts(logger, { address, redisUrl: config.REDIS_URL, contentStore: contentStoreText(config) }))
  }
  hold.release() // a worker alone has no address to tell
  if (role === 'api') return
  const worker = startWorker(config, logger, { metrics, content })
  closers.unshift(worker.close)
  logger.info({ concurrency: config.WORKER_CONCURRENCY, prefix: config.REDIS_PREFIX }, 'worker started')
  if (role === 'worker') {
    const endpoints = await startWorkerEndpoints(config, worker, logger)
    // Closed last: health checks and scrapes still answer while the worker drains.
    closers.push(endpoints.close)
    logger.info({ address: endpoints.url }, 'worker endpoints listening')
  }
}

/**
 * `trawl all` on a fresh machine: without REDIS_URL and without a Redis on 6379, run our own
 * (its stop joins `closers`). The config to go on with, or null when there is no Redis to use.
 */
async function redisFor (role: Role, config: Config, logger: Logger, closers: Array<() => Promise<void>>): Promise<Config | null> {
  if (role !== 'all' || config.redisUrlGiven) return config
  const { ensureRedis, NoRedisError } = await import('./redis/private-redis.js')
  try {
    const target = await ensureRedis(config.REDIS_URL, logger)
    closers.unshift(target.stop)
    return Object.freeze({ ...config, REDIS_URL: target.url })
  } catch (err) {
    if (!(err instanceof NoRedisError)) throw err
    fail(1, err.message)
    return null
  }
}

/** The content store as the start-up line names it: `fs <dir>` or `s3 <bucket>/<prefix>`. */
function contentStoreText (config: Config): string {
  if (config.CONTENT_STORE === 'fs') return `fs ${config.CONTENT_DIR}`
  return `s3 ${config.S3_BUCKET ?? ''}/${config.S3_PREFIX ?? config.REDIS_PREFIX}`
}

function fail (exitCode: number, message: string): void {
  process.stderr.write(`trawl: ${message}\n`)
  process.exitCode = exitCode
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`trawl: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
