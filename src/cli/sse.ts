/**
 * A Server-Sent Events parser (the WHATWG event-stream format), small enough to read in one go.
 * It turns the bytes of a `text/event-stream` body into messages, `retry` hints and comments.
 */

export type SseItem =
  /** A dispatched event; `id` is the stream's last event id when it was dispatched. */
  | { kind: 'event', event: string, data: string, id: string | undefined }
  /** The server's reconnection delay in milliseconds. */
  | { kind: 'retry', ms: number }
  /** A comment line (`: ...`), what servers send as heartbeats. */
  | { kind: 'comment', text: string }

/** What the parser carries from one line to the next. */
interface ParseState {
  /** The last event id seen: every later event is dispatched with it. */
  lastId: string | undefined
  /** The event being built: its type, and its data lines (null until a `data` field). */
  event: string
  data: string[] | null
}

export async function * readSse (body: AsyncIterable<Uint8Array>): AsyncGenerator<SseItem> {
  const state: ParseState = { lastId: undefined, event: '', data: null }
  let buffer = ''
  for await (const text of decodeText(body)) {
    buffer += text
    // Lines end with CRLF, LF or CR; a CR at the very end may still be followed by its LF.
    let match: RegExpExecArray | null
    const eol = /\r\n|\n|\r(?!$)/g
    let start = 0
    while ((match = eol.exec(buffer)) !== null) {
      yield * parseLine(state, buffer.slice(start, match.index))
      start = match.index + match[0].length
    }
    buffer = buffer.slice(start)
  }
  // A CR held back in case an LF followed ends its line after all. A stream that ends mid-event
  // drops that event, as the format says.
  if (buffer.endsWith('\r')) yield * parseLine(state, buffer.slice(0, -1))
}

/** The body as text, without the byte order mark the stream may open with. */
async function * decodeText (body: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder()
  let first = true
  for await (const chunk of body) {
    let text = decoder.decode(chunk, { stream: true })
    if (first && text.length > 0) {
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
      first = false
    }
    yield text
  }
}

/** One line of the stream (without its end): a blank one dispatches the event being built. */
function * parseLine (state: ParseState, raw: string): Generator<SseItem> {
  if (raw === '') {
    if (state.data !== null) yield { kind: 'event', event: state.event || 'message', data: state.data.join('\n'), id: state.lastId }
    state.event = ''
    state.data = null
    return
  }
  if (raw.startsWith(':')) {
    yield { kind: 'comment', text: raw.slice(1).trim() }
    return
  }
  const colon = raw.indexOf(':')
  const field = colon < 0 ? raw : raw.slice(0, colon)
  const value = colon < 0 ? '' : raw.slice(colon + 1).replace(/^ /, '')
  if (field === 'data') (state.data ??= []).push(value)
  else if (field === 'event') state.event = value
  else if (field === 'id' && !value.includes('\0')) state.lastId = value
  else if (field === 'retry' && /^\d+$/.test(value)) yield { kind: 'retry', ms: Number(value) }
}
