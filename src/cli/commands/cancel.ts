import { serverUrl } from '../args.js'
import { EXIT, ProblemError } from '../errors.js'
import { statusLine } from '../format.js'
import { TrawlClient } from '../http.js'
import type { CliIo } from '../io.js'

/** The problems that mean "nothing to cancel" rather than "the server is in trouble". */
const NOTHING_TO_CANCEL = new Set(['JOB_FINISHED', 'JOB_NOT_FOUND'])

/** `trawl cancel ID`: like `future.cancel()`; exit 1 when the job had finished or does not exist. */
export async function runCancel (id: string, flags: { server: string, apiKey?: string, json?: boolean }, io: CliIo): Promise<number> {
  const client = new TrawlClient(serverUrl(flags.server), { apiKey: flags.apiKey })
  try {
    const job = await client.cancel(id)
    const { results: _results, page: _page, ...summary } = job
    io.stdout.write(flags.json === true ? `${JSON.stringify(summary, null, 2)}\n` : `${statusLine(job)}\n`)
    return EXIT.OK
  } catch (err) {
    if (!(err instanceof ProblemError) || !NOTHING_TO_CANCEL.has(err.code)) throw err
    io.stderr.write(`trawl: ${err.message}\n`)
    return EXIT.FAILED
  }
}
