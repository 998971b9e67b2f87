/**
 * The tests' one Server-Sent Events reader. It is written apart from the product's parser
 * (src/cli/sse.ts) on purpose, so that the two check each other, and it keeps what a client
 * would drop: every field name an event was sent with, so the contract tests can hold the
 * stream to the document ("id, event and data, and nothing else").
 */

/** An event as a client sees it. */
export interface SseEvent {
  id?: string
  event?: string
  data: string
}

export type SseItem =
  /** The `retry:` field: the reconnection delay the server asks for, in milliseconds. */
  | { kind: 'retry', value: number }
  /** A comment line (`: heartbeat`). */
  | { kind: 'comment', text: string }
  /** A dispatched event with every field it carried (data lines joined with `\n`). */
  | { kind: 'event', fields: Record<string, string> }

export const asEvent = (fields: Record<string, string>): SseEvent => ({ ...fields, data: fields.data ?? '' })

/** Parses an event stream as it arrives: lines end with LF or CRLF; a blank line dispatches. */
export async function * parseSse (body: AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string>): AsyncGenerator<SseItem> {
  const decoder = new TextDecoder()
  let buffer = ''
  let fields: Record<string, string> = {}
  for await (const chunk of body) {
    buffer += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true })
    let nl
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl).replace(/\r$/, '')
      buffer = buffer.slice(nl + 1)
      if (line === '') {
        if ('data' in fields) yield { kind: 'event', fields }
        fields = {}
      } else if (line.startsWith(':')) {
        yield { kind: 'comment', text: line.slice(1).trim() }
      } else {
        const colon = line.indexOf(':')
        const name = colon < 0 ? line : line.slice(0, colon)
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
        if (name === 'retry') yield { kind: 'retry', value: Number(value) }
        else fields[name] = name === 'data' && 'data' in fields ? `${fields.data}\n${value}` : value
      }
    }
  }
}

/** The events of a whole stream body already read (an `app.inject` answer of a finished job). */
export async function eventsOfText (text: string): Promise<SseEvent[]> {
  const out: SseEvent[] = []
  for await (const item of parseSse([text])) if (item.kind === 'event') out.push(asEvent(item.fields))
  return out
}

interface FetchedStream {
  status: number
  headers: { get(name: string): string | null, entries(): Iterable<[string, string]> }
  body: AsyncIterable<Uint8Array> | null
}
type Fetcher = (url: string, init: { headers: Record<string, string>, signal: AbortSignal }) => Promise<FetchedStream>

export interface SseStream {
  status: number
  contentType: string | null
  headers: Record<string, string>
  /** The items in arrival order; ends when the server ends the stream or the test aborts it. */
  items(): AsyncGenerator<SseItem>
  abort(): void
}

/** Opens a real event stream (over the global fetch unless given another, e.g. undici's with an agent). */
export async function openSse (url: string, headers: Record<string, string> = {}, fetcher: Fetcher = fetch as unknown as Fetcher): Promise<SseStream> {
  const controller = new AbortController()
  const res = await fetcher(url, { headers: { accept: 'text/event-stream', ...headers }, signal: controller.signal })
  async function * items (): AsyncGenerator<SseItem> {
    if (!res.body) return
    try {
      yield * parseSse(res.body)
    } catch (err) {
      if (!controller.signal.aborted) throw err
    }
  }
  return {
    status: res.status,
    contentType: res.headers.get('content-type'),
    headers: Object.fromEntries(res.headers.entries()),
    items,
    abort: () => controller.abort()
  }
}

/** Every event (no comments, no retry) until the stream ends, or until `stopAfter` of them. */
export async function collect (stream: SseStream, stopAfter = Infinity): Promise<SseEvent[]> {
  const out: SseEvent[] = []
  if (stopAfter <= 0) return out
  for await (const item of stream.items()) {
    if (item.kind !== 'event') continue
    out.push(asEvent(item.fields))
    if (out.length >= stopAfter) {
      stream.abort()
      break
    }
  }
  return out
}
