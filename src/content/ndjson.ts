import { Readable } from 'node:stream'

/**
 * Result items as NDJSON (`application/x-ndjson`): one JSON document a line, each ending in
 * `\n`. The stream pulls the next item only when its reader wants more (back-pressure), so a
 * slow client holds one page of items at most and reads of `items` pause with it. An error from
 * `items` destroys the stream with that error (an HTTP reply is then cut, not ended cleanly).
 * Destroying the stream stops the iteration (`return()` on the iterator).
 */
export function ndjsonStream (items: AsyncIterable<unknown> | Iterable<unknown>, options: NdjsonOptions = {}): Readable {
  const batch = options.linesPerChunk ?? 64
  async function * lines (): AsyncGenerator<string> {
    let chunk = ''
    let n = 0
    for await (const item of items) {
      chunk += JSON.stringify(item) + '\n'
      // Small items are joined into one chunk: a write per line costs more than the line.
      if (++n >= batch) {
        yield chunk
        chunk = ''
        n = 0
      }
    }
    if (chunk !== '') yield chunk
  }
  return Readable.from(lines(), { objectMode: false, highWaterMark: options.highWaterMark ?? 64 * 1024 })
}

export interface NdjsonOptions {
  /** Lines joined into one chunk of the stream. @defaultValue 64 */
  linesPerChunk?: number
  /** Bytes the stream buffers ahead of its reader. @defaultValue 65536 */
  highWaterMark?: number
}
