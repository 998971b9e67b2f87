import type { ChildProcess } from 'node:child_process'

/**
 * Every child process and cleanup step the benchmark starts, so that an exit, an error or a
 * SIGINT leaves no server running and no key behind.
 */
const children = new Set<ChildProcess>()
const cleanups: Array<() => Promise<void>> = []
let cleaning: Promise<void> | undefined

export function track (child: ChildProcess): ChildProcess {
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}

/** Runs at the end, last registered first (e.g. remove Redis keys after the process that wrote them stopped). */
export function onCleanup (fn: () => Promise<void>): void {
  cleanups.unshift(fn)
}

function killAll (signal: NodeJS.Signals): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal)
  }
}

export function cleanupAll (): Promise<void> {
  cleaning ??= (async () => {
    for (const fn of cleanups) {
      try {
        await fn()
      } catch (err) {
        process.stderr.write(`bench: cleanup step failed: ${err instanceof Error ? err.message : String(err)}\n`)
      }
    }
    killAll('SIGKILL')
  })()
  return cleaning
}

/** SIGINT/SIGTERM: clean up (at most 15 s) and exit; a plain exit still kills the children. */
export function installExitHandlers (): void {
  const onSignal = (signal: NodeJS.Signals): void => {
    process.stderr.write(`\nbench: ${signal}, cleaning up\n`)
    const hard = setTimeout(() => {
      killAll('SIGKILL')
      process.exit(130)
    }, 15_000)
    hard.unref()
    cleanupAll().finally(() => process.exit(130))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  process.once('exit', () => killAll('SIGKILL'))
}
