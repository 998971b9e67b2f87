import { createWriteStream } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { ReadableStream as WebReadableStream } from 'node:stream/web'
import { bodyFileName } from '../content/names.js'
import type { ResultItem } from './documents.js'
import type { TrawlClient } from './http.js'

/**
 * A file name for a result that is safe on any file system and cannot leave the directory, the
 * same as the body's entry in the job's archive (content/names.ts), e.g.
 * `000-en.wikipedia.org-wiki-PHP.html`.
 */
export const fileNameFor = bodyFileName

/**
 * `-o DIR`: saves each succeeded body as its result arrives, a few at a time, while the job goes
 * on. Failures to save are reported and counted, never thrown into the event loop.
 */
export class BodySaver {
  readonly #queue: ResultItem[] = []
  readonly #running = new Set<Promise<void>>()
  #failures = 0

  constructor (
    private readonly client: TrawlClient,
    private readonly dir: string,
    private readonly total: number,
    private readonly report: (message: string) => void,
    private readonly signal?: AbortSignal,
    private readonly parallel = 4
  ) {}

  static async prepare (dir: string): Promise<void> {
    await mkdir(dir, { recursive: true })
  }

  add (item: ResultItem): void {
    if (item.state !== 'succeeded') return
    this.#queue.push(item)
    this.#pump()
  }

  /** Resolves when every queued body is written, with how many could not be. */
  async done (): Promise<number> {
    while (this.#running.size > 0) await Promise.race(this.#running)
    return this.#failures
  }

  #pump (): void {
    while (this.#running.size < this.parallel && this.#queue.length > 0) {
      const item = this.#queue.shift() as ResultItem
      const task = this.#save(item).catch((err: unknown) => {
        this.#failures++
        this.report(`could not save ${item.url}: ${err instanceof Error ? err.message : String(err)}`)
      }).finally(() => {
        this.#running.delete(task)
        this.#pump()
      })
      this.#running.add(task)
    }
  }

  async #save (item: ResultItem): Promise<void> {
    if (item.contentUrl === null) throw new Error('the server kept no body for it (keepContent is off?)')
    const res = await this.client.content(item.contentUrl, this.signal)
    if (!res.body) throw new Error('the server sent no body')
    const path = join(this.dir, fileNameFor(item.index, this.total, item.url, item.contentType))
    await pipeline(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>), createWriteStream(path), { signal: this.signal })
  }
}
