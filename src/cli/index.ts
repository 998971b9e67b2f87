import { Command, CommanderError, Option } from 'commander'
import { byteSize, DEFAULT_SERVER, integer, type GetFlags } from './args.js'
import { runCancel } from './commands/cancel.js'
import { runGet } from './commands/get.js'
import { runStatus } from './commands/status.js'
import { runWatch } from './commands/watch.js'
import { CliError, EXIT } from './errors.js'
import type { CliIo } from './io.js'
import { DEFAULT_PARALLEL } from './save.js'

export type { CliIo }

/**
 * `trawl get|status|watch|cancel ...`: the command-line client of a trawl server. Returns the
 * exit status; writes only to the streams it is given.
 */
export async function runCli (argv: readonly string[], io: Partial<CliIo> & Pick<CliIo, 'stdout' | 'stderr' | 'env'>): Promise<number> {
  const full: CliIo = { stdin: process.stdin, signals: process, ...io }
  let code: number = EXIT.OK
  const program = buildProgram(full, (exitCode) => { code = exitCode })
  try {
    await program.parseAsync([...argv], { from: 'user' })
    return code
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version are not errors; every other commander complaint is a usage error.
      return err.code === 'commander.helpDisplayed' || err.code === 'commander.help' || err.code === 'commander.version' ? EXIT.OK : EXIT.USAGE
    }
    if (err instanceof CliError) {
      io.stderr.write(`trawl: ${err.message}\n`)
      for (const line of err.details) io.stderr.write(`  ${line}\n`)
      return err.exitCode
    }
    throw err
  }
}

function buildProgram (io: CliIo, setCode: (code: number) => void): Command {
  const program = new Command('trawl')
    .description('Command-line client of a trawl server: batch downloads as jobs.')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => { io.stdout.write(s) },
      writeErr: (s) => { io.stderr.write(s) }
    })
    .showHelpAfterError('(trawl <command> --help for usage)')
    .allowExcessArguments(false)

  addGet(program, io, setCode)

  jobCommand(program, io, 'status', 'Show a job\'s state and counts.')
    .option('--json', 'print the job document with every result')
    .action(async (id: string, flags: { server: string, apiKey?: string, json?: boolean }) => { setCode(await runStatus(id, flags, io)) })

  jobCommand(program, io, 'watch', 'Follow an existing job to its end, like get does; Ctrl-C stops watching, not the job.')
    .option('-o, --output <dir>', 'save each downloaded body into this directory, with results.ndjson')
    .option('-p, --parallel <n>', `with -o: bodies downloaded at once (default ${DEFAULT_PARALLEL})`, integer(1))
    .option('--json', 'print the final job document (every result) instead of lines')
    .action(async (id: string, flags: { server: string, apiKey?: string, json?: boolean, output?: string, parallel?: number }) => { setCode(await runWatch(id, flags, io)) })

  jobCommand(program, io, 'cancel', 'Cancel a job: pending URLs are dropped, fetches in flight aborted.')
    .option('--json', 'print the job document (without results)')
    .action(async (id: string, flags: { server: string, apiKey?: string, json?: boolean }) => { setCode(await runCancel(id, flags, io)) })

  return program
}

function addGet (program: Command, io: CliIo, setCode: (code: number) => void): void {
  const get = program.command('get')
    .description('Download URLs as one job: a line per URL as it finishes, then a summary.')
    .argument('[urls...]', 'http(s) URLs to download')
    .option('-f, --file <path>', 'read URLs from a file, one a line (# comments and blank lines skipped; - is stdin)')
  withServer(get, io)
    .option('-c, --concurrency <n>', 'most fetches of this job in flight at once', integer(1))
    .option('-t, --timeout <ms>', 'deadline of one attempt of one URL, in milliseconds', integer(1))
    .option('-r, --retries <n>', 'extra attempts after a network error, timeout, 408, 429 or 5xx', integer(0))
    .option('--max-bytes <size>', 'cap on each decoded body (bytes, or with k, M, G)', byteSize)
    .option('--no-keep-content', 'do not keep the bodies on the server (no -o then)')
    .option('-o, --output <dir>', 'save each downloaded body into this directory, with results.ndjson')
    .option('-p, --parallel <n>', `with -o: bodies downloaded at once (default ${DEFAULT_PARALLEL})`, integer(1))
    .option('--json', 'print the final job document (every result) instead of lines')
    .addHelpText('after', '\nExit status: 0 all succeeded, 1 some failed or were cancelled, 2 usage error,\n3 server unreachable or answered a problem, 130 interrupted (the job is cancelled).')
    .action(async (urls: string[], flags: GetFlags) => { setCode(await runGet(urls, flags, io)) })
}

/** A command on one existing job, `trawl <name> <id>`, with the server options. */
function jobCommand (program: Command, io: CliIo, name: string, description: string): Command {
  return withServer(program.command(name).description(description).argument('<id>', 'job id (j_...)'), io)
}

/** Adds the options every command takes: which server, and the key to it. */
function withServer (command: Command, io: CliIo): Command {
  return command
    .addOption(new Option('-s, --server <url>', 'the trawl server (env TRAWL_SERVER)').default(io.env.TRAWL_SERVER ?? DEFAULT_SERVER))
    .addOption(new Option('-k, --api-key <key>', 'API key for a server with API_KEYS (env TRAWL_API_KEY)').default(io.env.TRAWL_API_KEY, 'TRAWL_API_KEY'))
}
