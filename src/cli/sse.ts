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

export async function * readSse (body: AsyncIterable<Uint8Array>): AsyncGenerator<SseItem> {
  const decoder = new TextDecoder()
  let buffer = ''
  let lastId: string | undefined
  let event = ''
  let data: string[] | null = null
  let first = true

  function * line (raw: string): Generator<SseItem> {
    if (raw === '') {
      if (data !== null) yield { kind: 'event', event: event || 'message', data: data.join('\n'), id: lastId }
      event = ''
      data = null
      return
    }
    if (raw.startsWith(':')) {
      yield { kind: 'comment', text: raw.slice(1).trim() }
      return
    }
    const colon = raw.indexOf(':')
    const field = colon < 0 ? raw : raw.slice(0, colon)
    const value = colon < 0 ? '' : raw.slice(colon + 1).replace(/^ /, '')
    if (field === 'data') (data ??= []).push(value)
    else if (field === 'event') event = value
    else if (field === 'id' && !value.includes('\0')) lastId = value
    else if (field === 'retry' && /^\d+$/.test(value)) yield { kind: 'retry', ms: Number(value) }
  }

  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true })
    if (first && buffer.length > 0) {
      if (buffer.charCodeAt(0) === 0xfeff) buffer = buffer.slice(1)
      first = false
    }
    // Lines end with CRLF, LF or CR; a CR at the very end may still be followed by its LF.
    let match: RegExpExecArray | null
    const eol = /\r\n|\n|\r(?!$)/g
    let start = 0
    while ((match = eol.exec(buffer)) !== null) {
      yield * line(buffer.slice(start, match.index))
      start = match.index + match[0].length
    }
    buffer = buffer.slice(start)
  }
  // A CR held back in case an LF followed ends its line after all. A stream that ends mid-event
  // drops that event, as the format says.
  if (buffer.endsWith('\r')) yield * line(buffer.slice(0, -1))
}
