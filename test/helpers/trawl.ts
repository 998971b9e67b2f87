import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { pino, type Logger } from 'pino'
import type { Test } from 'tap'
import { loadConfig, type Config } from '../../src/config.js'
import { startApi, type ApiRole } from '../../src/roles/api.js'
import { startWorker, type WorkerRole } from '../../src/roles/worker.js'
import { TEST_REDIS_URL, testPrefix } from './redis.js'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))

const contentDirs = new Set<string>()
// Bodies of the test services go to a folder per prefix under the temp dir, removed at exit.
process.once('exit', () => { for (const dir of contentDirs) rmSync(dir, { recursive: true, force: true }) })

/** The fs content store's folder of a test service on `prefix` (removed when the test process exits). */
export function testContentDir (prefix: string): string {
  const dir = join(tmpdir(), `trawl-test-content-${prefix}`)
  contentDirs.add(dir)
  return dir
}

/**
 * Environment every test service runs with: its own prefix and content folder, loopback targets
 * allowed, and no per-host cap (every target here is 127.0.0.1, one host: a cap would change
 * what the tests measure; test/hosts sets its own).
 */
export function testEnv (prefix: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    REDIS_URL: TEST_REDIS_URL,
    REDIS_PREFIX: prefix,
    CONTENT_DIR: testContentDir(prefix),
    FETCH_ALLOW_CIDRS: '127.0.0.0/8,::1/128',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    WORKER_LOCK_MS: '2000',
    // A `trawl worker` process serves its endpoints on a port the system picks, so that workers
    // of tests running side by side never collide on 9464.
    METRICS_PORT: '0',
    HOST_CONCURRENCY: '0',
    ...extra
  }
}

export interface TestTrawl {
  config: Config
  api: ApiRole
  worker: WorkerRole | null
  prefix: string
}

/** An API (and, unless `worker: false`, a worker) in this process, closed when the test ends. */
export async function startTrawl (t: Test, opts: { env?: Record<string, string>, worker?: boolean, prefix?: string, logger?: Logger } = {}): Promise<TestTrawl> {
  const prefix = opts.prefix ?? testPrefix(t)
  const config = loadConfig(testEnv(prefix, opts.env))
  const logger = opts.logger ?? pino({ level: config.LOG_LEVEL })
  const api = await startApi(config, logger)
  const worker = opts.worker === false ? null : startWorker(config, logger)
  t.teardown(async () => {
    await api.close()
    await worker?.close(0)
  })
  return { config, api, worker, prefix }
}

/** A real `trawl <role>` process from the sources, with the test's prefix; killed at teardown. */
export function spawnTrawl (t: Test, role: 'api' | 'worker' | 'all', env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', role], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await once(child, 'exit')
    }
  })
  return child
}

/** Resolves with the first JSON log line of `child` whose msg matches; rejects if it exits first. */
export function waitForLog (child: ChildProcess, msg: RegExp): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let buffer = ''
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString()
      let nl
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl)
        buffer = buffer.slice(nl + 1)
        try {
          const entry = JSON.parse(line) as Record<string, unknown>
          if (typeof entry.msg === 'string' && msg.test(entry.msg)) {
            child.stdout?.off('data', onData)
            child.off('exit', onExit)
            resolve(entry)
            return
          }
        } catch {}
      }
    }
    const onExit = (code: number | null) => reject(new Error(`process exited (${code}) before logging ${msg}`))
    child.stdout?.on('data', onData)
    child.once('exit', onExit)
  })
}
