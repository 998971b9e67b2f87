/**
 * `npm test`'s pretest: the suite runs real programs (Chromium for the dashboard, promtool and
 * prometheus for /metrics, unzip for archives, aria2c and curl as clients, redis-server when no
 * Redis answers). This finds the ones missing and, as root on a machine with apt-get (a fresh
 * Debian or Ubuntu, a CI container), installs their packages; otherwise it prints the one
 * apt-get line to run and stops, so that the suite never fails half-way for a missing program.
 * `.ci/run` installs the same list. Usage: tsx scripts/test-needs.ts
 */
import { spawnSync } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'
import { redisAnswers } from '../src/redis/private-redis.js'

/** A program the tests run, and the Debian package that has it. */
interface Need {
  program: string
  pkg: string
  /** Where the tests look for it, when not on PATH. */
  path?: string
}

const NEEDS: Need[] = [
  { program: 'chromium', pkg: 'chromium', path: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium' },
  { program: 'promtool', pkg: 'prometheus' },
  { program: 'prometheus', pkg: 'prometheus' },
  { program: 'unzip', pkg: 'unzip' },
  { program: 'aria2c', pkg: 'aria2' },
  { program: 'curl', pkg: 'curl' },
  // util-linux's `script` gives the start-up test a terminal; essential on Debian, but a slim image may lack it.
  { program: 'script', pkg: 'bsdutils' }
]

function executable (path: string): boolean {
  try {
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

const onPath = (program: string) => (process.env.PATH ?? '').split(delimiter).some((dir) => dir !== '' && executable(join(dir, program)))
const found = (need: Need) => (need.path !== undefined && executable(need.path)) || onPath(need.program)

async function missingPackages (): Promise<string[]> {
  const pkgs = NEEDS.filter((n) => !found(n)).map((n) => n.pkg)
  // A Redis is needed, not redis-server itself: REDIS_URL, or one on 6379, will do.
  const redis = process.env.REDIS_URL !== undefined || await redisAnswers('127.0.0.1', 6379)
  if (!redis && !onPath('redis-server')) pkgs.push('redis-server')
  return [...new Set(pkgs)]
}

function aptGet (args: string[]): void {
  const run = spawnSync('apt-get', args, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })
  if (run.status !== 0) {
    process.stderr.write(`test-needs: apt-get ${args.join(' ')} failed (exit ${run.status ?? run.signal})\n`)
    process.exit(1)
  }
}

const pkgs = await missingPackages()
if (pkgs.length > 0) {
  const line = `apt-get install -y ${pkgs.join(' ')}`
  if (process.getuid?.() === 0 && onPath('apt-get')) {
    process.stderr.write(`test-needs: the tests run these programs for real; installing: ${pkgs.join(' ')}\n`)
    aptGet(['update', '-qq'])
    aptGet(['install', '-y', '-qq', ...pkgs])
  } else {
    process.stderr.write(`test-needs: the tests run real programs that are missing here; install them first:\n  sudo ${line}\n` +
      (onPath('apt-get') ? '' : '(package names are Debian\'s; use your system\'s equivalents)\n'))
    process.exit(1)
  }
}
