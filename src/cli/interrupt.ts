/** Ctrl-C, twice over: the first asks the command to wind down, the second to stop at once. */
export interface Interrupts {
  /** Aborted at the first SIGINT. */
  readonly first: AbortSignal
  /** Aborted at the second SIGINT: give up on everything, now. */
  readonly second: AbortSignal
  /** Stops listening; SIGINT kills the process again as usual. */
  dispose(): void
}

export function listenForInterrupts (source: NodeJS.EventEmitter): Interrupts {
  const first = new AbortController()
  const second = new AbortController()
  const onSigint = () => {
    if (!first.signal.aborted) first.abort(new Error('interrupted'))
    else second.abort(new Error('interrupted twice'))
  }
  source.on('SIGINT', onSigint)
  return {
    first: first.signal,
    second: second.signal,
    dispose: () => { source.off('SIGINT', onSigint) }
  }
}
