import cliProgress from 'cli-progress'
import type { JobSummary, ResultItem } from './documents.js'
import { formatBytes, resultLine, summaryLine } from './format.js'

/** A writable the client prints to; `isTTY` picks the live bar over plain lines. */
export interface Output {
  write(chunk: string): unknown
  isTTY?: boolean
}

/** What a command shows while it follows a job. */
export interface Reporter {
  state(doc: JobSummary): void
  result(item: ResultItem): void
  /** A message for the person at the terminal (reconnects, interrupts), never mixed into data lines. */
  notice(message: string): void
  /** The job reached a final state: the bar goes away and the summary is printed. */
  finish(final: JobSummary): void
  /** Stops the bar without a summary (an error ended the command). Safe to call twice. */
  close(): void
}

export interface ReporterOptions {
  stdout: Output
  stderr: Output
  /** Print a line per URL and the summary (off for `--json`). */
  lines: boolean
}

/** A live bar on a terminal, plain lines anywhere else. */
export function createReporter (options: ReporterOptions): Reporter {
  return options.stdout.isTTY === true ? new BarReporter(options) : new LineReporter(options)
}

class LineReporter implements Reporter {
  constructor (private readonly options: ReporterOptions) {}
  state (): void {}
  result (item: ResultItem): void {
    if (this.options.lines) this.options.stdout.write(`${resultLine(item)}\n`)
  }

  notice (message: string): void {
    this.options.stderr.write(`trawl: ${message}\n`)
  }

  finish (final: JobSummary): void {
    if (this.options.lines) this.options.stdout.write(`${summaryLine(final)}\n`)
  }

  close (): void {}
}

interface Payload { bytes: number }

/** Done/total, bytes, rate and elapsed time, redrawn in place; finished URLs scroll above it. */
class BarReporter implements Reporter {
  readonly #multi: cliProgress.MultiBar
  #bar: cliProgress.SingleBar | null = null
  #done = 0
  #bytes = 0

  constructor (private readonly options: ReporterOptions) {
    this.#multi = new cliProgress.MultiBar({
      stream: options.stdout as NodeJS.WritableStream,
      format: renderBar,
      barsize: 30,
      hideCursor: true,
      clearOnComplete: true,
      // The command owns SIGINT (it cancels the job); the bar must not take it over.
      gracefulExit: false,
      fps: 10
    })
  }

  state (doc: JobSummary): void {
    if (this.#bar === null) this.#bar = this.#multi.create(doc.total, this.#done, { bytes: this.#bytes } satisfies Payload)
  }

  result (item: ResultItem): void {
    this.#done++
    this.#bytes += item.bytes
    if (this.options.lines) this.#multi.log(`${resultLine(item)}\n`)
    this.#bar?.update(this.#done, { bytes: this.#bytes } satisfies Payload)
  }

  notice (message: string): void {
    if (this.#bar === null) this.options.stderr.write(`trawl: ${message}\n`)
    else this.#multi.log(`trawl: ${message}\n`)
  }

  finish (final: JobSummary): void {
    this.#bar?.update(this.#done, { bytes: this.#bytes } satisfies Payload)
    this.close()
    if (this.options.lines) this.options.stdout.write(`${summaryLine(final)}\n`)
  }

  close (): void {
    if (!this.#multi.isActive && this.#bar === null) return
    // Logged lines are only written on the next redraw: draw once more, then take the bar away.
    this.#multi.update()
    this.#multi.stop()
    this.#bar = null
  }
}

function renderBar (options: cliProgress.Options, params: cliProgress.Params, payload: Payload): string {
  const elapsed = Math.max(0.001, (Date.now() - params.startTime) / 1000)
  const bar = cliProgress.Format.BarFormat(params.progress, options)
  return `${bar} ${params.value}/${params.total} | ${formatBytes(payload.bytes)} | ${formatBytes(Math.round(payload.bytes / elapsed))}/s | ${elapsed.toFixed(1)} s`
}
