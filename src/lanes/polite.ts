import type { FetchOptions, PageResult } from '../fetcher/fetch-page.js'
import { hostOf } from '../hosts/keys.js'
import { PAUSED_URL_MAX_MS } from '../hosts/outcome.js'
import type { LaneJob, Politeness } from '../hosts/politeness.js'
import type { Lease } from '../hosts/slots.js'
import type { ParkedUrl } from '../jobs/schemas.js'

/**
 * One claimed URL through the host rules (src/hosts): robots.txt, a slot on its host, the
 * fetch, the slot back. Either it ends with a page (fetched, or refused by robots.txt, or
 * paused for too long) or it is to be parked, its attempts so far kept with it.
 */

/** A page or a park, and the slot the lane keeps for its next URL on the same host, if any. */
export type PoliteOutcome = ({ page: PageResult } | { park: ParkedUrl }) & { lease?: Lease | null }

/** A URL's download settings as a lane fetches it: whether its body is kept, too. */
export type LaneFetchOptions = FetchOptions & { keepContent: boolean }

export interface PoliteDeps {
  hosts: Politeness
  fetch(url: string, options: LaneFetchOptions, signal: AbortSignal): Promise<PageResult>
  now(): number
}

const NOT_PARKED = { attempts: 0, spent: 0, pausedAt: null }

// A job's fetch options for its URLs not parked before, made once per job options object
// rather than once per URL.
const firstTry = new WeakMap<LaneJob['options'], LaneFetchOptions>()

/** Pause answers do not spend the retry budget: only what was spent before counts. */
function fetchOptions (options: LaneJob['options'], prior: Pick<ParkedUrl, 'spent'>): LaneFetchOptions {
  if (prior.spent === 0) {
    let made = firstTry.get(options)
    if (made === undefined) firstTry.set(options, (made = { ...options, hostPauses: true }))
    return made
  }
  return { ...options, retries: Math.max(0, options.retries - prior.spent), hostPauses: true }
}

const unfetched = (attempts: number, code: 'ROBOTS_DISALLOWED', message: string): PageResult => ({
  ok: false, status: null, finalUrl: null, contentType: null, bytes: 0, sha256: null, error: { code, message }, attempts, durationMs: 0
})

/** Fetches `url` politely, holding `lease` (a slot on some host) if the lane has one. */
export async function fetchPolitely (url: string, parked: ParkedUrl | null, job: LaneJob, deps: PoliteDeps, lease: Lease | null, signal: AbortSignal): Promise<PoliteOutcome> {
  const prior = parked ?? NOT_PARKED
  let host: string
  try {
    host = hostOf(url)
  } catch {
    // Not a URL: the fetcher says so (INTERNAL); no host to be polite to.
    if (lease) await deps.hosts.after(lease, lease.host, null)
    return { page: await deps.fetch(url, job.options, signal) }
  }
  if (lease && lease.host !== host) {
    await deps.hosts.after(lease, lease.host, null)
    lease = null
  }
  let page: PageResult | null = null
  let kept: Lease | null = null
  if (lease === null && deps.hosts.unguarded(host, job)) {
    // Nothing to ask of the host first; only a 429 or 503 has something to tell it.
    page = await deps.fetch(url, fetchOptions(job.options, prior), signal)
    if (!signal.aborted && (page.status === 429 || page.status === 503)) await deps.hosts.after(null, host, page)
  } else {
    const admission = await deps.hosts.admit(url, host, job, lease)
    if (admission.kind === 'disallowed') return { page: unfetched(prior.attempts, 'ROBOTS_DISALLOWED', admission.message) }
    if (admission.kind === 'wait') return { park: { ...prior, waitingFor: admission.waitingFor, host } }
    try {
      page = await deps.fetch(url, fetchOptions(job.options, prior), signal)
    } finally {
      if (admission.lease && page && !signal.aborted) kept = await deps.hosts.reuse(admission.lease, host, page, job)
      else await deps.hosts.after(admission.lease, host, signal.aborted ? null : page)
    }
  }
  const attempts = prior.attempts + page.attempts
  // A URL with no attempts before this one (the usual case) keeps its page as fetched.
  if (!page.pause) return { page: prior.attempts === 0 ? page : { ...page, attempts }, lease: kept }
  const pausedAt = prior.pausedAt ?? deps.now()
  if (deps.now() - pausedAt >= PAUSED_URL_MAX_MS) {
    const message = `the host kept answering ${page.status ?? 429} for ${Math.round((deps.now() - pausedAt) / 60_000)} min`
    return { page: { ...page, ok: false, sha256: null, attempts, error: { code: 'TIMEOUT', message } } }
  }
  return { park: { waitingFor: 'pause', host, attempts, spent: prior.spent + page.attempts - 1, pausedAt } }
}
