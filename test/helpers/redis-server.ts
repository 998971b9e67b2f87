import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { rmSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { freePort } from '../../src/redis/free-port.js'

/**
 * A `redis-server` of the test's own, on a free port with its files in a temporary folder and
 * every write fsynced to its append-only file, so that a test can stop it and start it again on
 * the same port and data, as an outage would. Killed and removed when the test ends.
 */
export interface PrivateRedis {
  readonly port: number
  readonly url: string
  readonly dir: string
  /** True between start() and the end of stop(). */
  readonly running: boolean
  /** Starts the server (again) on the same port and folder; resolves once it accepts connections. */
  start(): Promise<void>
  /** SIGTERM: Redis closes its clients, flushes its files and exits; resolves on exit. */
  stop(): Promise<void>
}

/** `args`: more `redis-server` arguments, e.g. `['--maxmemory', '64mb']`. */
export async function startPrivateRedis (t: Test, options: { args?: string[] } = {}): Promise<PrivateRedis> {
  const port = await freePort()
  const dir = await mkdtemp(join(tmpdir(), 'trawl-outage-'))
  let child: ChildProcess | null = null

  async function start (): Promise<void> {
    if (child !== null) throw new Error('redis-server is already running')
    const proc = spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
      '--appendonly', 'yes', '--appendfsync', 'always', '--save', '',
      '--daemonize', 'no', '--loglevel', 'notice', ...(options.args ?? [])
    ], { stdio: ['ignore', 'pipe', 'pipe'] })
    child = proc
    // Redis prints this line once it has loaded its files and listens: the event to wait for.
    await new Promise<void>((resolve, reject) => {
      let log = ''
      const onData = (chunk: Buffer) => {
        log += chunk.toString()
        if (/Ready to accept connections/.test(log)) {
          proc.stdout?.off('data', onData)
          proc.off('exit', onExit)
          proc.stdout?.resume()
          resolve()
        }
      }
      const onExit = (code: number | null) => {
        child = null
        reject(new Error(`redis-server exited (${code}) before it was ready:\n${log}`))
      }
      proc.once('error', reject)
      proc.stdout?.on('data', onData)
      proc.once('exit', onExit)
    })
    proc.stderr?.resume()
  }

  async function stop (): Promise<void> {
    const proc = child
    if (proc === null) return
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = once(proc, 'exit')
      proc.kill('SIGTERM')
      await exited
    }
    child = null
  }

  // Should the test process end without its teardown (a tap timeout), take the server along.
  const onExit = () => {
    child?.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  }
  process.once('exit', onExit)
  t.teardown(async () => {
    process.off('exit', onExit)
    const proc = child
    if (proc !== null && proc.exitCode === null && proc.signalCode === null) {
      const exited = once(proc, 'exit')
      proc.kill('SIGKILL')
      await exited
    }
    child = null
    await rm(dir, { recursive: true, force: true })
  })

  await start()
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    get running () { return child !== null },
    start,
    stop
  }
}
