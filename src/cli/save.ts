import { setMaxListeners } from 'node:events'
import { createWriteStream } from 'node:fs'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { Agent } from 'undici'
import { bodyFileName } from '../content/names.js'
import type { ResultItem } from './documents.js'
import type { TrawlClient } from './http.js'

/**
 * A file name for a result that is safe on any file system and cannot leave the directory, the
 * same as the body's entry in the job's archive (content/names.ts), e.g.
 * `000-en.wikipedia.org-wiki-PHP.html`.
 */
export const fileNameFor = bodyFileName

/** Bodies downloaded at once by `-o` unless `--parallel` says otherwise. */
export const DEFAULT_PARALLEL = 16

/** The manifest `-o` writes beside the bodies: every result item, in input order, with its file. */
export const MANIFEST = 'results.ndjson'

/**
 * `-o DIR`: saves each succeeded body as its result arrives, `parallel` at a time over one
 * keep-alive connection pool, each streamed to its file as it comes (never held whole), while
 * the job goes on; at the end writes MANIFEST. Failures to save are reported and counted, never
 * thrown into the event loop; a body that could not be saved leaves no partial file.
 */
export class BodySaver {
  readonly #queue: ResultItem[] = []
  readonly #running = new Set<Promise<void>>()
  readonly #items = new Map<number, { item: ResultItem, file: string | null }>()
  readonly #agent: Agent
  readonly #parallel: number
  #failures = 0

  constructor (
    private readonly client: TrawlClient,
    private readonly dir: string,
    private readonly total: number,
    private readonly report: (message: string) => void,
    private readonly signal?: AbortSignal,
    parallel = DEFAULT_PARALLEL
  ) {
    this.#parallel = Math.max(1, parallel)
    // Each download in flight listens on the signal twice (request, file): room for all of them.
    if (signal !== undefined) setMaxListeners(this.#parallel * 2 + 10, signal)
    this.#agent = new Agent({ connections: this.#parallel, keepAliveTimeout: 10_000 })
  }

  static async prepare (dir: string): Promise<void> {
    await mkdir(dir, { recursive: true })
  }

  add (item: ResultItem): void {
    this.#items.set(item.index, { item, file: null })
    if (item.state !== 'succeeded') return
    this.#queue.push(item)
    this.#pump()
  }

  /** Resolves when every queued body is written and the manifest too, with how many bodies could not be. */
  async done (): Promise<number> {
    while (this.#running.size > 0) await Promise.race(this.#running)
    await this.#writeManifest().catch((err: unknown) => {
      this.#failures++
      this.report(`could not write ${join(this.dir, MANIFEST)}: ${err instanceof Error ? err.message : String(err)}`)
    })
    await this.dispose()
    return this.#failures
  }

  /** Closes the connection pool (done() does it too); downloads still running are aborted. */
  async dispose (): Promise<void> {
    await this.#agent.destroy().catch(() => {})
  }

  #pump (): void {
    while (this.#running.size < this.#parallel && this.#queue.length > 0) {
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
    const body = await this.client.content(item.contentUrl, this.#agent, this.signal)
    const file = fileNameFor(item.index, this.total, item.url, item.contentType)
    const path = join(this.dir, file)
    try {
      await pipeline(body, createWriteStream(path), { signal: this.signal })
    } catch (err) {
      await rm(path, { force: true }).catch(() => {})
      throw err
    }
    const entry = this.#items.get(item.index)
    if (entry !== undefined) entry.file = file
  }

  async #writeManifest (): Promise<void> {
    const lines = [...this.#items.values()]
      .sort((a, b) => a.item.index - b.item.index)
      .map(({ item, file }) => JSON.stringify({ ...item, file }) + '\n')
    await writeFile(join(this.dir, MANIFEST), lines.join(''))
  }
}
