/**
 * Runs a command (the test suite) against a Redis: REDIS_URL if set, else the one on
 * 127.0.0.1:6379, else a private redis-server started for the run and stopped after it.
 * Usage: tsx scripts/with-redis.ts <command> [args...]
 */
import { spawn } from 'node:child_process'
import { pino } from 'pino'
import { ensureRedis, NoRedisError } from '../src/redis/private-redis.js'

const [command, ...args] = process.argv.slice(2)
if (command === undefined) {
  process.stderr.write('usage: with-redis <command> [args...]\n')
  process.exit(2)
}
const logger = pino({ level: 'warn' })
let target
try {
  target = process.env.REDIS_URL ? { url: process.env.REDIS_URL, stop: async () => {} } : await ensureRedis('redis://127.0.0.1:6379', logger)
} catch (err) {
  process.stderr.write(`${err instanceof NoRedisError ? err.message : String(err)}\n`)
  process.exit(1)
}
const child = spawn(command, args, { stdio: 'inherit', env: { ...process.env, REDIS_URL: target.url } })
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal))
child.on('exit', (code, signal) => {
  target.stop().finally(() => process.exit(code ?? (signal ? 1 : 0)))
})
