/**
 * Follows an event stream with fetch(), because EventSource cannot send an Authorization
 * header. Parses Server-Sent Events as the WHATWG spec does (fields, multi-line data, comments,
 * ids), resumes with Last-Event-ID after a dropped connection, and stops on 204 (the server's
 * "nothing more will come") or when the caller says so.
 */
import { call, AuthRequired } from './api.js'

const RECONNECT_MS = 2000

/** Splits text into SSE lines, keeping an unfinished last line (and a lone trailing CR) for later. */
function takeLines (buffer) {
  const lines = []
  let start = 0
  for (let i = 0; i < buffer.length; i++) {
    const c = buffer[i]
    if (c !== '\n' && c !== '\r') continue
    if (c === '\r' && i === buffer.length - 1) break
    lines.push(buffer.slice(start, i))
    if (c === '\r' && buffer[i + 1] === '\n') i++
    start = i + 1
  }
  return { lines, rest: buffer.slice(start) }
}

/**
 * A parser fed one line at a time; calls `emit({ id, event, data })` per complete event. `id` is
 * the last id seen so far, taken at dispatch as the spec says: an event cut off mid-way does not
 * move the resume point past itself.
 */
function eventParser (emit) {
  let id = null
  let event = ''
  let data = []
  return (line) => {
    if (line === '') {
      if (data.length > 0) emit({ id, event: event || 'message', data: data.join('\n') })
      event = ''
      data = []
      return
    }
    if (line.startsWith(':')) return
    const colon = line.indexOf(':')
    const field = colon < 0 ? line : line.slice(0, colon)
    let value = colon < 0 ? '' : line.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    if (field === 'event') event = value
    else if (field === 'data') data.push(value)
    else if (field === 'id' && !value.includes('\0')) id = value
  }
}

async function readEvents (body, onEvent, setLastId) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader()
  let pending = ''
  const feed = eventParser((e) => {
    if (e.id !== null) setLastId(e.id)
    onEvent(e)
  })
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return
    const { lines, rest } = takeLines(pending + value)
    pending = rest
    for (const line of lines) feed(line)
  }
}

/** One connection: 'over' (204), 'dropped' (the stream ended or broke) or an HTTP status text. */
async function connect (path, lastId, signal, onEvent, setLastId) {
  const headers = { accept: 'text/event-stream' }
  if (lastId !== null) headers['last-event-id'] = lastId
  const res = await call(path, { headers, signal })
  if (res.status === 204) return 'over'
  if (!res.ok) return `HTTP ${res.status}`
  await readEvents(res.body, onEvent, setLastId)
  return 'dropped'
}

/**
 * Follows `path`; `onEvent({ event, data })` gets each event with its data parsed as JSON.
 * Returns `{ stop() }`. `onGone(err)` is told when the stream cannot go on (404, auth);
 * `onEnd()` when following ends, for whatever reason.
 */
export function follow (path, onEvent, { onGone = () => {}, onEnd = () => {} } = {}) {
  const abort = new AbortController()
  let lastId = null
  const dispatch = (e) => {
    if (abort.signal.aborted) return
    let data = null
    try {
      data = JSON.parse(e.data)
    } catch {}
    onEvent({ event: e.event, data })
  }
  const run = async () => {
    while (!abort.signal.aborted) {
      let outcome
      try {
        outcome = await connect(path, lastId, abort.signal, dispatch, (id) => { lastId = id })
      } catch (err) {
        if (abort.signal.aborted) return
        if (err instanceof AuthRequired) return onGone(err)
        outcome = 'dropped'
      }
      if (abort.signal.aborted || outcome === 'over') return
      if (outcome !== 'dropped') return onGone(new Error(outcome))
      await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS))
    }
  }
  run().finally(onEnd)
  return { stop: () => abort.abort() }
}
