import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { track } from './procs.js'

export interface CurlRun {
  /** Spawn to exit of the curl process (its start-up included, as a user of curl pays it). */
  ms: number
  /** User + system CPU of curl, from its parent shell's cutime/cstime (10 ms resolution). */
  cpuMs: number
  failures: number
}

const TICK_MS = 10

/** A curl config file (`-K`) fetching every URL to /dev/null. */
export function curlConfig (urls: readonly string[], name: string): string {
  const file = join(tmpdir(), `trawl-bench-curl-${process.pid}-${name}.cfg`)
  writeFileSync(file, urls.map((u) => `url = "${u}"\noutput = "/dev/null"\n`).join(''))
  return file
}

/**
 * Debian's curl as the second reference: `curl --parallel --parallel-immediate --parallel-max c -K file`.
 * It runs under `sh` so that the shell, once curl has been waited for, reports curl's CPU time
 * (fields cutime and cstime of /proc/<sh>/stat); `-w` prints one status line per URL to count
 * failures.
 */
export async function curlLoop (configFile: string, concurrency: number): Promise<CurlRun> {
  const script = `curl --silent --no-progress-meter --parallel --parallel-immediate --parallel-max ${concurrency} -w '%{http_code}\\n' -K "$1"; read -r s < /proc/$$/stat; echo "STAT $s"`
  const t0 = performance.now()
  const child = track(spawn('sh', ['-c', script, 'sh', configFile], { stdio: ['ignore', 'pipe', 'ignore'] }))
  let out = ''
  child.stdout?.on('data', (c: Buffer) => { out += c.toString() })
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  const took = performance.now() - t0
  const lines = out.split('\n')
  const stat = lines.find((l) => l.startsWith('STAT ')) ?? ''
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // After the command name: state is rest[0]; cutime and cstime are fields 16 and 17 of stat.
  const cpuMs = (Number(rest[13]) + Number(rest[14])) * TICK_MS
  const failures = lines.filter((l) => /^\d{3}$/.test(l) && l !== '200').length + (code === 0 ? 0 : 1)
  return { ms: took, cpuMs, failures }
}
