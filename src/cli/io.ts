import type { Output } from './progress.js'

/** Everything the client touches outside itself, handed in by `main.ts` (and by tests). */
export interface CliIo {
  stdout: Output
  stderr: Output
  /** The environment: `TRAWL_SERVER` is read from it. */
  env: Readonly<Record<string, string | undefined>>
  /** For `-f -`. @defaultValue process.stdin */
  stdin: NodeJS.ReadableStream
  /** Where SIGINT comes from. @defaultValue process */
  signals: NodeJS.EventEmitter
}
