/** A minimal Server-Sent Events reader for tests, over the global fetch. */
export interface SseEvent {
  id?: string
  event?: string
  data: string
  retry?: number
}

export interface SseStream {
  status: number
  contentType: string | null
  /** Events and comment lines (`{ comment }`) in arrival order; ends when the server ends the stream. */
  items(): AsyncGenerator<SseEvent | { comment: string }>
  abort(): void
}

export async function openSse (url: string, headers: Record<string, string> = {}): Promise<SseStream> {
  const controller = new AbortController()
  const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: controller.signal })
  async function * items (): AsyncGenerator<SseEvent | { comment: string }> {
    if (!res.body) return
    const decoder = new TextDecoder()
    let buffer = ''
    let current: Partial<SseEvent> & { dataLines?: string[] } = {}
    try {
      for await (const chunk of res.body) {
        buffer += decoder.decode(chunk, { stream: true })
        let nl
        while ((nl = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, nl).replace(/\r$/, '')
          buffer = buffer.slice(nl + 1)
          if (line === '') {
            if (current.dataLines || current.retry !== undefined) {
              const { dataLines, ...rest } = current
              yield { ...rest, data: (dataLines ?? []).join('\n') }
            }
            current = {}
          } else if (line.startsWith(':')) {
            yield { comment: line.slice(1).trim() }
          } else {
            const colon = line.indexOf(':')
            const field = colon < 0 ? line : line.slice(0, colon)
            const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
            if (field === 'data') (current.dataLines ??= []).push(value)
            else if (field === 'id') current.id = value
            else if (field === 'event') current.event = value
            else if (field === 'retry') current.retry = Number(value)
          }
        }
      }
    } catch (err) {
      if (!controller.signal.aborted) throw err
    }
  }
  return { status: res.status, contentType: res.headers.get('content-type'), items, abort: () => controller.abort() }
}

/** Every event (no comments, no bare retry) until the stream ends. */
export async function collect (stream: SseStream, stopAfter = Infinity): Promise<SseEvent[]> {
  const out: SseEvent[] = []
  for await (const item of stream.items()) {
    if ('comment' in item || item.event === undefined) continue
    out.push(item)
    if (out.length >= stopAfter) {
      stream.abort()
      break
    }
  }
  return out
}
