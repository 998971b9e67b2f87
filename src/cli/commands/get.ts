import { checkUrls, jobOptionsOf, readUrlFile, serverUrl, type GetFlags } from '../args.js'
import { CliError, EXIT, ProblemError, UsageError } from '../errors.js'
import { TrawlClient } from '../http.js'
import { listenForInterrupts, type Interrupts } from '../interrupt.js'
import type { CliIo } from '../io.js'
import { createReporter, type Reporter } from '../progress.js'
import { BodySaver } from '../save.js'
import { showJob } from './show-job.js'

/**
 * `trawl get URL... | -f FILE`: submit one job, follow it to the end, exit by its outcome.
 * Ctrl-C cancels the job on the server and still shows how it ended (exit 130); a second
 * Ctrl-C stops waiting for that.
 */
export async function runGet (args: string[], flags: GetFlags, io: CliIo): Promise<number> {
  const { urls, client } = await prepare(args, flags, io)
  const interrupts = listenForInterrupts(io.signals)
  const stop = new AbortController()
  const reporter = createReporter({ stdout: io.stdout, stderr: io.stderr, lines: flags.json !== true })
  try {
    const job = await client.submit({ urls, options: jobOptionsOf(flags) }, interrupts.second)
    io.stderr.write(`trawl: job ${job.id} (${job.total} URL${job.total === 1 ? '' : 's'}) on ${client.server}\n`)
    const cancelling = cancelOnInterrupt(client, job.id, interrupts, reporter, stop)
    const shown = await showJob(client, job.id, io, flags, AbortSignal.any([interrupts.second, stop.signal]), reporter)
    await cancelling()
    return interrupts.first.aborted ? EXIT.INTERRUPTED : shown.exitCode
  } catch (err) {
    if (!interrupts.first.aborted) throw err
    // Interrupted anyway: say what else went wrong, but exit as interrupted.
    if (err instanceof CliError) reporter.notice(err.message)
    return EXIT.INTERRUPTED
  } finally {
    interrupts.dispose()
  }
}

/** The URLs and the client, once the flags are known to go together and `-o` can be written. */
async function prepare (args: string[], flags: GetFlags, io: CliIo): Promise<{ urls: string[], client: TrawlClient }> {
  const urls = [...args, ...(flags.file === undefined ? [] : await readUrlFile(flags.file, io.stdin))]
  checkUrls(urls)
  if (flags.output !== undefined && !flags.keepContent) {
    throw new UsageError('-o saves the bodies the server kept; it cannot go with --no-keep-content')
  }
  const client = new TrawlClient(serverUrl(flags.server), { apiKey: flags.apiKey })
  if (flags.output !== undefined) {
    await BodySaver.prepare(flags.output).catch((err: unknown) => {
      throw new UsageError(`cannot create ${flags.output}: ${err instanceof Error ? err.message : String(err)}`)
    })
  }
  return { urls, client }
}

/**
 * Cancels the job on the first Ctrl-C (at once if it came already); the returned function
 * gives that cancel's promise (resolved if there was none).
 */
function cancelOnInterrupt (client: TrawlClient, id: string, interrupts: Interrupts, reporter: Reporter, stop: AbortController): () => Promise<void> {
  let cancelling: Promise<void> = Promise.resolve()
  const cancel = () => {
    reporter.notice(`interrupted: cancelling job ${id}`)
    cancelling = client.cancel(id, interrupts.second).then(() => {}, (err: unknown) => {
      reporter.notice(`could not cancel job ${id}: ${err instanceof Error ? err.message : String(err)}`)
      // A job that finished meanwhile still ends its stream; otherwise it may never end now.
      if (!(err instanceof ProblemError && err.code === 'JOB_FINISHED')) stop.abort()
    })
  }
  if (interrupts.first.aborted) cancel()
  else interrupts.first.addEventListener('abort', cancel, { once: true })
  return () => cancelling
}
