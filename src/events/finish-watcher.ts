import type { Redis } from 'ioredis'

/**
 * Lets requests wait for a job to finish (`GET /jobs/:id?wait=N`). One subscriber connection per
 * API process carries the ids of finished jobs, whichever process finished them; each waiter is
 * a local promise keyed by job id.
 */
export interface FinishWatcher {
  /** Resolves when `id` finishes, after `ms`, or when `signal` aborts, whichever is first. */
  wait(id: string, ms: number, signal?: AbortSignal): Promise<void>
  /** True once closed: waits end at once, and waiting requests answer with what they have. */
  readonly closed: boolean
  close(): Promise<void>
}

export async function createFinishWatcher (subscriber: Redis, channel: string): Promise<FinishWatcher> {
  const waiters = new Map<string, Set<() => void>>()
  subscriber.on('message', (ch: string, id: string) => {
    if (ch !== channel) return
    const set = waiters.get(id)
    if (set) for (const wake of set) wake()
  })
  // Resubscribed by us on every reconnect (the connection has autoResubscribe off): ioredis'
  // own resubscribe leaves an unhandled rejection if the connection drops again meanwhile.
  subscriber.on('ready', () => { subscriber.subscribe(channel).catch(() => {}) })
  await subscriber.subscribe(channel)

  let closed = false
  function wait (id: string, ms: number, signal?: AbortSignal): Promise<void> {
    // An 'abort' listener never fires for an abort that has already happened.
    if (closed || signal?.aborted === true) return Promise.resolve()
    return new Promise((resolve) => {
      let set = waiters.get(id)
      if (!set) waiters.set(id, (set = new Set()))
      const done = () => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', done)
        set.delete(done)
        if (set.size === 0) waiters.delete(id)
        resolve()
      }
      const timer = setTimeout(done, ms)
      signal?.addEventListener('abort', done, { once: true })
      set.add(done)
    })
  }

  async function close () {
    closed = true
    for (const set of waiters.values()) for (const wake of set) wake()
  }

  return { wait, close, get closed () { return closed } }
}
