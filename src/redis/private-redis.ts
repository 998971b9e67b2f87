import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { freePort } from './free-port.js'

/** A Redis for `trawl all` on a machine that has none running: started and stopped by us. */
export interface RedisTarget {
  url: string
  stop(): Promise<void>
}

export class NoRedisError extends Error {
  constructor (url: string) {
    super(`No Redis answers at ${url} and redis-server is not installed: install Redis 6.2+ (e.g. apt-get install redis-server) or set REDIS_URL.`)
    this.name = 'NoRedisError'
  }
}

/** True when something speaking Redis answers PING at host:port within `ms`. */
export function redisAnswers (host: string, port: number, ms = 700): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port })
    const done = (ok: boolean) => { socket.destroy(); resolve(ok) }
    socket.setTimeout(ms, () => done(false))
    socket.once('error', () => done(false))
    socket.once('connect', () => socket.write('PING\r\n'))
    socket.once('data', (d) => done(/^(\+PONG|-NOAUTH)/.test(d.toString())))
  })
}

/**
 * Uses the Redis on 127.0.0.1:6379 when one answers; otherwise starts a private `redis-server`
 * on a free port with its files in a temporary folder, removed again by stop().
 */
export async function ensureRedis (defaultUrl: string, logger: Logger): Promise<RedisTarget> {
  const url = new URL(defaultUrl)
  if (await redisAnswers(url.hostname, Number(url.port || 6379))) return { url: defaultUrl, stop: async () => {} }
  const port = await freePort()
  const dir = await mkdtemp(join(tmpdir(), 'trawl-redis-'))
  const child: ChildProcess = spawn('redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
    '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--loglevel', 'warning'
  ], { stdio: ['ignore', 'ignore', 'pipe'] })
  const spawned = await new Promise<boolean>((resolve) => {
    child.once('error', () => resolve(false))
    child.once('spawn', () => resolve(true))
  })
  if (!spawned) {
    await rm(dir, { recursive: true, force: true })
    throw new NoRedisError(defaultUrl)
  }
  const deadline = Date.now() + 5000
  while (!(await redisAnswers('127.0.0.1', port, 200))) {
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill('SIGKILL')
      await rm(dir, { recursive: true, force: true })
      throw new Error(`redis-server did not start on port ${port}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  logger.info({ port, dir }, 'no Redis at %s: started a private redis-server', defaultUrl)
  let stopping: Promise<void> | undefined
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: () => (stopping ??= (async () => {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve))
        child.kill('SIGTERM')
        await exited
      }
      await rm(dir, { recursive: true, force: true })
    })())
  }
}
