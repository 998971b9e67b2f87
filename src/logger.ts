import type { LoggerOptions } from 'pino'
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
