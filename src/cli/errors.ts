/**
 * What can end a command early, each with the exit status it stands for. Commands throw these;
 * `runCli` prints the message on stderr (one line, plus detail lines) and exits with `exitCode`.
 */

/** Exit statuses of the client. */
export const EXIT = {
  /** Every URL succeeded (or the command did what it was asked). */
  OK: 0,
  /** Some URL failed or was cancelled; or `cancel` found the job finished or missing. */
  FAILED: 1,
  /** The command line was wrong. */
  USAGE: 2,
  /** The server could not be reached, or answered with a problem or something not trawl's. */
  SERVER: 3,
  /** Interrupted with Ctrl-C (128 + SIGINT). */
  INTERRUPTED: 130
} as const

export class CliError extends Error {
  constructor (message: string, readonly exitCode: number, readonly details: readonly string[] = [], options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'CliError'
  }
}

export class UsageError extends CliError {
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, EXIT.USAGE, [], options)
    this.name = 'UsageError'
  }
}

/** No answer at all: refused, reset, DNS, timeout, or the event stream lost for good. */
export class UnreachableError extends CliError {
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, EXIT.SERVER, [], options)
    this.name = 'UnreachableError'
  }
}

/** An RFC 9457 problem (or a bare non-2xx answer) from the server. */
export class ProblemError extends CliError {
  constructor (
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    readonly fieldErrors: ReadonlyArray<{ path: string, message: string }> = []
  ) {
    super(`${code}: ${detail}`, EXIT.SERVER, fieldErrors.map((e) => `${e.path}: ${e.message}`))
    this.name = 'ProblemError'
  }
}

/** A 2xx answer that is not what a trawl server sends (wrong --server, proxy page, ...). */
export class ProtocolError extends CliError {
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, EXIT.SERVER, [], options)
    this.name = 'ProtocolError'
  }
}
