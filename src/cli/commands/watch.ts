import { serverUrl } from '../args.js'
import { EXIT } from '../errors.js'
import { TrawlClient } from '../http.js'
import { listenForInterrupts } from '../interrupt.js'
import type { CliIo } from '../io.js'
import { BodySaver } from '../save.js'
import { showJob, type ShowFlags } from './show-job.js'

/**
 * `trawl watch ID`: follow a job someone else submitted, like `get` does, from its first event.
 * Ctrl-C only stops watching (exit 130); the job goes on. `trawl cancel` is for ending it.
 */
export async function runWatch (id: string, flags: ShowFlags & { server: string, apiKey?: string }, io: CliIo): Promise<number> {
  const client = new TrawlClient(serverUrl(flags.server), { apiKey: flags.apiKey })
  if (flags.output !== undefined) await BodySaver.prepare(flags.output)
  const interrupts = listenForInterrupts(io.signals)
  try {
    // The event stream opens with the job as it was created; the header shows it as it is now.
    const doc = await client.read(id, { results: 'none' }, interrupts.first)
    io.stderr.write(`trawl: watching job ${id} (${doc.total} URL${doc.total === 1 ? '' : 's'}, ${doc.state}) on ${client.server}\n`)
    return (await showJob(client, id, io, flags, interrupts.first)).exitCode
  } catch (err) {
    if (!interrupts.first.aborted) throw err
    io.stderr.write(`trawl: stopped watching job ${id}; it goes on on the server\n`)
    return EXIT.INTERRUPTED
  } finally {
    interrupts.dispose()
  }
}
