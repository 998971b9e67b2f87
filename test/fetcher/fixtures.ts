import type { Dispatcher } from 'undici'
import { createDispatcher } from '../../src/fetcher/agent.js'
import { fetchPage, type FetchHooks, type FetchOptions, type PageResult } from '../../src/fetcher/fetch-page.js'
import type { BodySink } from '../../src/fetcher/decode.js'
import { createHash } from 'node:crypto'
import { createAddressGuard } from '../../src/fetcher/guard.js'
import { startTargetServer, type TargetServer } from '../helpers/target-server.js'

/** What the fetcher's test files share: a target server, a loopback-only dispatcher, options. */

export const KiB = 1024
export const MiB = 1024 * KiB
export const opts: FetchOptions = { timeoutMs: 5000, maxBytes: MiB, maxRedirects: 5, headers: {}, retries: 0 }
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

/** A sink that keeps the last body it was given in memory, as a test reader of it would. */
export function memorySink (): { sink: BodySink, bodies: Buffer[] } {
  const bodies: Buffer[] = []
  const sink: BodySink = async (chunks) => {
    const parts: Buffer[] = []
    for await (const chunk of chunks) parts.push(chunk)
    const body = Buffer.concat(parts)
    bodies.push(body)
    return { sha256: createHash('sha256').update(body).digest('hex') }
  }
  return { sink, bodies }
}

/** fetchPage with the body kept in memory (`body`, null unless stored), for tests that read it. */
export async function fetchKept (dispatcher: Dispatcher, url: string, o: FetchOptions, signal: AbortSignal, hooks: FetchHooks = {}): Promise<PageResult & { body: Buffer | null }> {
  const { sink, bodies } = memorySink()
  const r = await fetchPage(dispatcher, url, o, signal, { ...hooks, sink })
  return { ...r, body: r.sha256 === null ? null : bodies.at(-1) ?? null }
}
