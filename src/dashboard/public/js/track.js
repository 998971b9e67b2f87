/**
 * A job's live view: its document, kept current from its event stream. `state` events carry
 * the job at each change of state; `result` events one URL each as it ends, so the counts in
 * between are tallied here, by index (a URL replayed twice is counted once). The view never
 * moves backwards: a state older than the one shown, or a count lower, is ignored.
 */
import { follow } from './sse.js'

export const FINAL = new Set(['completed', 'failed', 'cancelled'])
const RANK = { queued: 0, running: 1, completed: 2, failed: 2, cancelled: 2 }
const ENDED = ['succeeded', 'failed', 'cancelled']

export const isFinal = (doc) => FINAL.has(doc.state)

/** Merges a newer `state` document into the view; a final one is taken as it is. */
export function mergeState (view, doc) {
  if (isFinal(view)) return view
  if (isFinal(doc)) return { ...doc }
  const state = RANK[doc.state] >= RANK[view.state] ? doc.state : view.state
  const counts = { ...view.counts }
  for (const name of ENDED) counts[name] = Math.max(view.counts[name] ?? 0, doc.counts?.[name] ?? 0)
  return recount({ ...view, ...doc, results: undefined, state, counts }, doc.counts?.running ?? view.counts.running)
}

/** Applies a tally of ended URLs (index -> state) to the view's counts. */
export function applyTally (view, tally) {
  if (isFinal(view)) return view
  const seen = { succeeded: 0, failed: 0, cancelled: 0 }
  for (const state of tally.values()) if (state in seen) seen[state]++
  const counts = { ...view.counts }
  for (const name of ENDED) counts[name] = Math.max(counts[name] ?? 0, seen[name])
  // A URL that reaches an end was running; a result is also proof the job is.
  const state = RANK[view.state] < 1 && tally.size > 0 ? 'running' : view.state
  return recount({ ...view, state, counts }, Math.max(0, (view.counts.running ?? 0) - (done(counts) - done(view.counts))))
}

const done = (c) => (c.succeeded ?? 0) + (c.failed ?? 0) + (c.cancelled ?? 0)

function recount (view, running) {
  const finished = done(view.counts)
  const inFlight = Math.max(0, Math.min(running ?? 0, view.total - finished))
  return { ...view, counts: { ...view.counts, running: inFlight, pending: Math.max(0, view.total - finished - inFlight) } }
}

/** Ended URLs of a view, for progress bars. */
export const finishedCount = (view) => done(view.counts)

/**
 * Follows job `doc.id` until it is final. `onChange(view)` after each event, `onResult(item)`
 * for each URL that ends, `onEnd()` once it no longer follows. Returns `{ stop(), update(doc) }`.
 */
export function trackJob (doc, { onChange, onResult = () => {}, onGone = () => {}, onEnd = () => {} }) {
  let view = { ...doc }
  const tally = new Map()
  let stream = null
  const changed = () => {
    onChange(view)
    if (isFinal(view)) stream?.stop()
  }
  if (!isFinal(doc)) {
    stream = follow(`/jobs/${encodeURIComponent(doc.id)}/events`, ({ event, data }) => {
      if (data === null) return
      if (event === 'state') view = mergeState(view, data)
      else if (event === 'result' && typeof data.index === 'number') {
        tally.set(data.index, data.state)
        view = applyTally(view, tally)
        onResult(data)
      } else return
      changed()
    }, { onGone, onEnd })
  } else {
    queueMicrotask(onEnd)
  }
  return {
    stop: () => stream?.stop(),
    /** Takes a document the page read itself (e.g. the answer to DELETE). */
    update (next) {
      view = mergeState(view, next)
      changed()
    }
  }
}
