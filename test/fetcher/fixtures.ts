import type { Dispatcher } from 'undici'
import { createDispatcher } from '../../src/fetcher/agent.js'
import type { FetchHooks, FetchOptions } from '../../src/fetcher/fetch-page.js'
import { createAddressGuard } from '../../src/fetcher/guard.js'
import { startTargetServer, type TargetServer } from '../helpers/target-server.js'

/** What the fetcher's test files share: a target server, a loopback-only dispatcher, options. */

export const KiB = 1024
export const MiB = 1024 * KiB
export const opts: FetchOptions = { timeoutMs: 5000, maxBytes: MiB, maxRedirects: 5, headers: {}, keepContent: true, retries: 0 }
export const never = new AbortController().signal

interface Teardown { teardown (fn: () => unknown): void }

/** A target server and a dispatcher allowed onto loopback, both closed in `t`'s teardown. */
export async function fetchTarget (t: Teardown): Promise<{ target: TargetServer, agent: Dispatcher }> {
  const target = await startTargetServer(t)
  const agent = createDispatcher({ guard: createAddressGuard(['127.0.0.0/8', '::1/128']) })
  t.teardown(() => agent.destroy())
  return { target, agent }
}

/** Records the backoff waits instead of waiting; `random` is the jitter's draw. */
export function recordSleeps (random = 0.5): FetchHooks & { sleeps: number[] } {
  const sleeps: number[] = []
  return { sleeps, random: () => random, sleep: async (ms) => { sleeps.push(ms) } }
}
