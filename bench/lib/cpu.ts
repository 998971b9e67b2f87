import { readFileSync } from 'node:fs'

const TICK_MS = 10 // USER_HZ is 100 on Linux

/** CPU time (user + system) a process has used so far, in ms; NaN when it cannot be read. 10 ms resolution. */
export function processCpuMs (pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name, which may itself hold spaces and parentheses.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(rest[11]) + Number(rest[12])) * TICK_MS
  } catch {
    return NaN
  }
}

/** CPU ms used by a set of processes between `start()` and `stop()`. */
export class CpuMeter {
  readonly #pids: Record<string, number>
  #before: Record<string, number> = {}
  #selfBefore = process.cpuUsage()

  constructor (pids: Record<string, number>) {
    this.#pids = pids
  }

  start (): void {
    this.#before = Object.fromEntries(Object.entries(this.#pids).map(([k, pid]) => [k, processCpuMs(pid)]))
    this.#selfBefore = process.cpuUsage()
  }

  /** CPU ms per process name, plus `bench` (this process, µs resolution). */
  stop (): Record<string, number> {
    const out: Record<string, number> = {}
    for (const [k, pid] of Object.entries(this.#pids)) out[k] = processCpuMs(pid) - (this.#before[k] ?? NaN)
    const self = process.cpuUsage(this.#selfBefore)
    out.bench = (self.user + self.system) / 1000
    return out
  }
}
