import { Worker } from 'node:worker_threads'
import { writeOne } from './fs-writer-thread.mjs'

/** Bodies closer together than this go to the thread (milliseconds). */
const BUSY_MS = 2

/** One body for the thread (fs-writer-thread.mjs): `dir` is made when missing. */
interface WriteItem {
  id: number
  dir: string
  tmp: string
  path: string
  data: Uint8Array
  fsync: boolean
}

/** The thread's answer for one body. */
interface WriteDone {
  id: number
  error: { message: string, code?: string } | null
}

/**
 * Small bodies written by one worker thread, off the event loop, while bodies come in quickly.
 * Creating and renaming a file costs tens to hundreds of microseconds of kernel time (far more
 * on an ext4 without a journal right after many deletes: docs/bench-results.md), which a busy
 * event loop would otherwise spend instead of fetching. Bodies handed over in one turn of the
 * event loop go as one message, and come back as one. A body that comes alone (none in the last
 * BUSY_MS, none waiting for the thread) is written in place: a round trip to the thread costs a
 * slow page more time (1-3 ms of wake-ups) than the write itself.
 */
export class SmallFileWriter {
  #worker: Worker | null = null
  readonly #waiting = new Map<number, { resolve: () => void, reject: (err: Error) => void }>()
  #batch: WriteItem[] = []
  #seq = 0
  #closed = false
  /** When the last body was handed over (performance.now()). */
  #last = -Infinity

  /** Writes `data` to `tmp` (making `dir` when missing), then renames it to `path`. */
  write (dir: string, tmp: string, path: string, data: Uint8Array, fsync: boolean): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('the content store is closed'))
    const now = performance.now()
    const alone = now - this.#last > BUSY_MS && this.#batch.length === 0 && this.#waiting.size === 0
    this.#last = now
    if (alone) {
      try {
        writeOne({ dir, tmp, path, data, fsync })
        return Promise.resolve()
      } catch (err) {
        return Promise.reject(err)
      }
    }
    const id = this.#seq++
    if (this.#batch.length === 0) setImmediate(() => this.#flush())
    this.#batch.push({ id, dir, tmp, path, data, fsync })
    return new Promise<void>((resolve, reject) => { this.#waiting.set(id, { resolve, reject }) })
  }

  #flush (): void {
    const batch = this.#batch
    this.#batch = []
    if (batch.length === 0) return
    const worker = this.#thread()
    worker.ref()
    // Copied, not transferred: a chunk may be a view of a pooled buffer that others share.
    worker.postMessage(batch)
  }

  #thread (): Worker {
    if (this.#worker !== null) return this.#worker
    const worker = new Worker(new URL('./fs-writer-thread.mjs', import.meta.url))
    worker.unref()
    worker.on('message', (done: WriteDone[]) => this.#settle(done))
    // A thread that dies fails what it held; the next write starts a new one.
    const fail = (err: Error): void => {
      if (this.#worker !== worker) return
      this.#worker = null
      for (const [id, w] of this.#waiting) {
        if (this.#batch.some((item) => item.id === id)) continue
        this.#waiting.delete(id)
        w.reject(err)
      }
    }
    worker.on('error', fail)
    worker.on('exit', (code) => fail(new Error(`the content writer thread exited (${code})`)))
    this.#worker = worker
    return worker
  }

  #settle (done: WriteDone[]): void {
    for (const d of done) {
      const w = this.#waiting.get(d.id)
      if (w === undefined) continue
      this.#waiting.delete(d.id)
      if (d.error === null) w.resolve()
      else w.reject(Object.assign(new Error(d.error.message), { code: d.error.code }))
    }
    if (this.#waiting.size === 0) this.#worker?.unref()
  }

  /** Waits for the writes in progress, then stops the thread. Safe twice. */
  async close (): Promise<void> {
    this.#closed = true
    const pending = [...this.#waiting.values()].map((w) => new Promise<void>((resolve) => {
      const { resolve: ok, reject } = w
      w.resolve = () => { ok(); resolve() }
      w.reject = (err) => { reject(err); resolve() }
    }))
    await Promise.all(pending)
    const worker = this.#worker
    this.#worker = null
    await worker?.terminate()
  }
}
