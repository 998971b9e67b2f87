import { serverUrl } from '../args.js'
import { EXIT } from '../errors.js'
import { TrawlClient } from '../http.js'
import type { CliIo } from '../io.js'
import { statusLine } from '../format.js'

/** `trawl status ID`: the job's state and counts in one line, or `--json` its whole document. */
export async function runStatus (id: string, flags: { server: string, apiKey?: string, json?: boolean }, io: CliIo): Promise<number> {
  const client = new TrawlClient(serverUrl(flags.server), { apiKey: flags.apiKey })
  if (flags.json === true) {
    io.stdout.write(`${JSON.stringify(await client.readAll(id), null, 2)}\n`)
    return EXIT.OK
  }
  const job = await client.read(id, { results: 'none' })
  io.stdout.write(`${statusLine(job)}\n`)
  if (job.error) io.stdout.write(`Error: ${job.error.code} ${job.error.message}\n`)
  return EXIT.OK
}
