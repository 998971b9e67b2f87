import { inspect } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'

export interface EventuallyOptions {
  /** What is awaited, for the failure message ("the callback settles"). */
  what: string
  /** How long to keep asking, in milliseconds. @defaultValue 5000 */
  timeoutMs?: number
  /** Pause between two probes, in milliseconds. @defaultValue 20 */
  intervalMs?: number
}

type Falsy = false | 0 | '' | null | undefined

/**
 * Asks `probe` again and again until it returns something truthy, and returns that. For states
 * nothing announces (a sampled metric, a connection coming back, a record written just after an
 * answer): where an event can be awaited, await the event instead. Throws once `timeoutMs` has
 * passed, naming what was awaited and the last value seen, so a test fails with a reason.
 */
export async function eventually<T> (probe: () => T | Promise<T>, options: EventuallyOptions): Promise<Exclude<T, Falsy>> {
  const { what, timeoutMs = 5000, intervalMs = 20 } = options
  const deadline = Date.now() + timeoutMs
  let last: T
  for (;;) {
    last = await probe()
    if (last) return last as Exclude<T, Falsy>
    if (Date.now() >= deadline) break
    await sleep(intervalMs)
  }
  throw new Error(`eventually: ${what}: still not the case after ${timeoutMs} ms (last probe: ${inspect(last, { depth: 2, breakLength: Infinity }).slice(0, 300)})`)
}

/**
 * The value of `promise` if it settles within `ms` milliseconds, else `'late'`: for asserting
 * that something happens promptly (well before a backstop timer would make it happen anyway)
 * without sleeping. The timer does not hold the process open.
 */
export async function within<T> (ms: number, promise: Promise<T>): Promise<T | 'late'> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<'late'>((resolve) => { timer = setTimeout(() => resolve('late'), ms).unref() })
  try {
    return await Promise.race([promise, late])
  } finally {
    clearTimeout(timer)
  }
}
