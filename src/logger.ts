import { pino, type Logger, type LoggerOptions } from 'pino'
import { PinoPretty } from 'pino-pretty'
import type { Config } from './config.js'

/** pino options shared by every role; secrets are redacted wherever they might appear. */
export function loggerOptions (config: Pick<Config, 'LOG_LEVEL'>): LoggerOptions {
  return {
    level: config.LOG_LEVEL,
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers.cookie',
        'headers.authorization',
        'config.CALLBACK_SECRET',
        'options.headers.authorization',
        'options.headers.cookie'
      ],
      censor: '[redacted]'
    }
  }
}

/** Where log lines go; process.stdout unless a test passes its own. */
export interface LogOutput extends NodeJS.WritableStream {
  /** True on a terminal: lines are then written for a person rather than for a log collector. */
  isTTY?: boolean
}

/**
 * Holds the lines logged while the service starts (below `error`: those go out at once), so the
 * first line a person sees is the one that says where the service is. Pass it to createLogger;
 * once up, `release(() => logWhereabouts(...))` writes that line, then the held ones in order
 * (stamped with the time they are written). Release it on a failed start too.
 */
export interface StartupHold {
  /** pino's hooks, for createLogger. */
  readonly hooks: NonNullable<LoggerOptions['hooks']>
  /** Stops holding: runs `first` (what it logs goes out at once), then writes the held lines. Once. */
  release(first?: () => void): void
}

export function startupHold (): StartupHold {
  let held: Array<() => void> | null = []
  return {
    hooks: {
      logMethod (args, method, level) {
        if (held === null || level >= 50) return method.apply(this, args)
        held.push(() => method.apply(this, args))
      }
    },
    release (first) {
      const lines = held
      held = null
      first?.()
      for (const line of lines ?? []) line()
    }
  }
}

/**
 * The process logger: readable, coloured lines (pino-pretty) when `out` is a terminal, one JSON
 * object a line otherwise (containers, pipes, files), at LOG_LEVEL either way. With `hold`,
 * start-up lines wait for hold.release().
 */
export function createLogger (config: Pick<Config, 'LOG_LEVEL'>, out: LogOutput = process.stdout, hold?: StartupHold): Logger {
  const options = { ...loggerOptions(config), ...(hold === undefined ? {} : { hooks: hold.hooks }) }
  if (out.isTTY !== true) return pino(options, out)
  // In this thread and synchronous, not a transport worker: a crash's last lines still reach the terminal.
  const pretty = PinoPretty({
    destination: out,
    sync: true,
    colorize: true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname'
  })
  return pino(options, pretty)
}

/** What the start-up line tells a person about the running service. */
export interface ServiceWhereabouts {
  /** What `app.listen()` answered, e.g. `http://127.0.0.1:3000`. */
  address: string
  /** REDIS_URL; its password (and user name) is masked before it is logged. */
  redisUrl: string
  /** The content store in use, described for a person, e.g. `fs ./data/content` or `s3 bucket/prefix`. */
  contentStore?: string
}

/** The Redis URL with its credentials replaced by `***`, so the line can be shared. */
export function maskUrl (raw: string): string {
  try {
    const url = new URL(raw)
    if (url.password !== '') url.password = '***'
    else if (url.username !== '') url.username = '***'
    return url.toString().replace(/\/$/, '')
  } catch {
    return '[unparsable url]'
  }
}

// An unspecified bind address is not somewhere a browser can go; the same machine is.
function browsable (address: string): string {
  return address.replace(/^(https?:\/\/)(0\.0\.0\.0|\[::\])(?=[:/]|$)/, '$1localhost')
}

/**
 * Logs the line that tells a person where the service is: the address, the dashboard, the API
 * reference, the Redis and the content store. Call it right after the API listens, before
 * anything else is logged, so that it is the first thing `npm start` shows.
 */
export function logWhereabouts (logger: Logger, where: ServiceWhereabouts): void {
  const base = browsable(where.address).replace(/\/$/, '')
  const fields = {
    address: where.address,
    dashboard: `${base}/`,
    docs: `${base}/docs`,
    redis: maskUrl(where.redisUrl),
    contentStore: where.contentStore ?? 'unknown'
  }
  logger.info(fields, `trawl is up: dashboard ${fields.dashboard}, API reference ${fields.docs}, Redis ${fields.redis}, content store ${fields.contentStore}`)
}
