import type { Redis } from 'ioredis'

/** Calls and µs per command, from `INFO commandstats`. */
export type CommandStats = Map<string, { calls: number, usec: number }>

/** One SLOWLOG entry: id, when, µs taken, and the command's first words. */
export interface SlowEntry { id: number, at: number, usec: number, command: string }

export async function commandStats (redis: Redis): Promise<CommandStats> {
  const text = await redis.info('commandstats')
  const out: CommandStats = new Map()
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    out.set(m[1] as string, { calls: Number(m[2]), usec: Number(m[3]) })
  }
  return out
}

/** after - before, per command; commands that did not move are left out. */
export function statsDelta (before: CommandStats, after: CommandStats): CommandStats {
  const out: CommandStats = new Map()
  for (const [cmd, a] of after) {
    const b = before.get(cmd) ?? { calls: 0, usec: 0 }
    if (a.calls > b.calls) out.set(cmd, { calls: a.calls - b.calls, usec: a.usec - b.usec })
  }
  return out
}

/** Adds `more` into `into` (several runs of one side). */
export function addStats (into: CommandStats, more: CommandStats): void {
  for (const [cmd, s] of more) {
    const was = into.get(cmd) ?? { calls: 0, usec: 0 }
    into.set(cmd, { calls: was.calls + s.calls, usec: was.usec + s.usec })
  }
}

/** The newest SLOWLOG entries (Redis keeps 128 by default), newest first. */
export async function slowlog (redis: Redis, count = 128): Promise<SlowEntry[]> {
  const raw = await redis.call('SLOWLOG', 'GET', String(count)) as Array<[number, number, number, Array<string | Buffer>]>
  return raw.map(([id, at, usec, args]) => ({ id, at, usec, command: args.slice(0, 4).map((a) => String(a).slice(0, 60)).join(' ') }))
}

/**
 * Lines for a report: per command, calls and µs per URL, and µs per call, biggest first.
 * Redis 7 counts the commands a script runs under their own names too, and the script's own
 * usec (evalsha) includes them: do not add the two.
 */
export function statsLines (stats: CommandStats, urls: number, top = 18): string[] {
  const rows = [...stats].sort((a, b) => b[1].usec - a[1].usec).slice(0, top)
  return rows.map(([cmd, s]) => `${cmd.padEnd(14)} ${(s.calls / urls).toFixed(2).padStart(7)} calls/URL  ${(s.usec / urls).toFixed(1).padStart(7)} µs/URL  ${(s.usec / s.calls).toFixed(1).padStart(7)} µs/call`)
}
