import type { JobSummary } from '../documents.js'
import { EXIT } from '../errors.js'
import { followJob } from '../follow.js'
import type { TrawlClient } from '../http.js'
import type { CliIo } from '../io.js'
import { createReporter, type Reporter } from '../progress.js'
import { BodySaver } from '../save.js'

export interface ShowFlags {
  /** Print the final job document (every result) instead of lines. */
  json?: boolean
  /** Save each succeeded body into this directory (already created). */
  output?: string
  /** With `output`: bodies downloaded at once. @defaultValue save.ts DEFAULT_PARALLEL */
  parallel?: number
  /** Called once, with the snapshot that opens the stream. */
  onOpen?: (doc: JobSummary) => void
}

export interface Shown {
  final: JobSummary
  /** 0 when every URL succeeded (and was saved, with -o), else 1. */
  exitCode: number
}

/**
 * What `get` and `watch` share: follow the job's event stream to its end with a bar or lines,
 * save bodies with `-o`, then print the summary or, with `--json`, the whole final document.
 */
export async function showJob (client: TrawlClient, id: string, io: CliIo, flags: ShowFlags, signal: AbortSignal, reporter?: Reporter): Promise<Shown> {
  const report = reporter ?? createReporter({ stdout: io.stdout, stderr: io.stderr, lines: flags.json !== true })
  let saver: BodySaver | null = null
  let final: JobSummary
  let unsaved = 0
  let opened = false
  try {
    final = await followJob(client, id, {
      onState (doc) {
        if (!opened) flags.onOpen?.(doc)
        opened = true
        report.state(doc)
        if (flags.output !== undefined) saver ??= new BodySaver(client, flags.output, doc.total, (message) => report.notice(message), signal, flags.parallel)
      },
      onResult (item) {
        report.result(item)
        saver?.add(item)
      },
      onReconnect (attempt, max, reason, delayMs) {
        report.notice(`event stream of job ${id} dropped (${reason}); reconnecting in ${(delayMs / 1000).toFixed(1)} s (${attempt}/${max})`)
      }
    }, { signal })
    unsaved = await (saver as BodySaver | null)?.done() ?? 0
  } catch (err) {
    report.close()
    await (saver as BodySaver | null)?.dispose()
    throw err
  }
  report.finish(final)
  if (final.state === 'failed') {
    io.stderr.write(`trawl: job ${id} failed${final.error ? `: ${final.error.code} ${final.error.message}` : ''}\n`)
  }
  if (flags.json === true) io.stdout.write(`${JSON.stringify(await client.readAll(id, signal), null, 2)}\n`)
  const allGood = final.state === 'completed' && final.counts.succeeded === final.total && unsaved === 0
  return { final, exitCode: allGood ? EXIT.OK : EXIT.FAILED }
}
