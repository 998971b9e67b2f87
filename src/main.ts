#!/usr/bin/env node
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

/** Starts the role's parts, then closes them in reverse order on SIGTERM/SIGINT. */
async function serve (role: Role, config: Config): Promise<void> {
  // The server stack loads only for the server roles, so the client starts quickly.
  const [{ default: closeWithGrace }, { pino }, { loggerOptions }, { ensureRedis, NoRedisError }, { startApi }, { startWorker }, { createContentStore, contentStoreOptions }] = await Promise.all([
    import('close-with-grace'), import('pino'), import('./logger.js'), import('./redis/private-redis.js'), import('./roles/api.js'), import('./roles/worker.js'), import('./content/index.js')
  ])
  const logger = pino(loggerOptions(config))
  const closers: Array<() => Promise<void>> = []

  // `trawl all` on a fresh machine: without REDIS_URL and without a Redis on 6379, run our own.
  if (role === 'all' && !config.redisUrlGiven) {
    try {
      const target = await ensureRedis(config.REDIS_URL, logger)
      config = Object.freeze({ ...config, REDIS_URL: target.url })
      closers.unshift(target.stop)
    } catch (err) {
      if (!(err instanceof NoRedisError)) throw err
      return fail(1, err.message)
    }
  }
  // `trawl all`: the API and the worker share one content store (one set of clients).
  const content = role === 'all' ? createContentStore(contentStoreOptions(config)) : undefined
  if (content !== undefined) closers.unshift(() => content.close())
  if (role !== 'api') {
    closers.unshift(startWorker(config, logger, { content }).close)
    logger.info({ concurrency: config.WORKER_CONCURRENCY, prefix: config.REDIS_PREFIX }, 'worker started')
  }
  if (role !== 'worker') {
    const api = await startApi(config, logger, { content })
    closers.unshift(api.close)
    logger.info({ address: await api.app.listen({ port: config.PORT, host: config.HOST }) }, 'api listening')
  }
  // SIGTERM/SIGINT: stop taking requests, let in-flight fetches finish or hand them back, exit.
  closeWithGrace({ delay: config.SHUTDOWN_GRACE_MS + 10_000, logger }, async ({ err, signal }) => {
    if (err) logger.error({ err }, 'fatal error, shutting down')
    else logger.info({ signal }, 'shutting down')
    for (const close of closers) await close()
  })
}

function fail (exitCode: number, message: string): void {
  process.stderr.write(`trawl: ${message}\n`)
  process.exitCode = exitCode
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`trawl: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
