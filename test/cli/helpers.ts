import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createServer as createTcpServer, connect, type AddressInfo, type Socket } from 'node:net'
import type { Test } from 'tap'
import { ROOT, startTrawl, type TestTrawl } from '../helpers/trawl.js'

/** A port nothing listens on: bound once, then closed. */
export { freePort as closedPort } from '../../src/redis/free-port.js'

/** A trawl API (and worker) in this process, listening on a real port for the CLI to talk to. */
export async function startService (t: Test, opts: Parameters<typeof startTrawl>[1] = {}): Promise<TestTrawl & { base: string }> {
  const trawl = await startTrawl(t, opts)
  const base = await trawl.api.app.listen({ port: 0, host: '127.0.0.1' })
  return { ...trawl, base }
}

export interface CliResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export interface CliProcess {
  child: ChildProcess
  /** Resolves when the process has exited, with everything it wrote. */
  done: Promise<CliResult>
  /** Resolves with the first match of `pattern` in what the process wrote so far or writes next. */
  waitFor(stream: 'stdout' | 'stderr', pattern: RegExp): Promise<RegExpMatchArray>
}

/** `node --import tsx src/main.ts <args>` from the sources, killed at teardown if still running. */
export function cli (t: Test, args: string[], opts: { env?: Record<string, string>, input?: string } = {}): CliProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...opts.env },
    stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe']
  })
  if (opts.input !== undefined) child.stdin?.end(opts.input)
  const text = { stdout: '', stderr: '' }
  child.stdout?.setEncoding('utf8').on('data', (s: string) => { text.stdout += s })
  child.stderr?.setEncoding('utf8').on('data', (s: string) => { text.stderr += s })
  const done = new Promise<CliResult>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal, ...text }))
  })
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await once(child, 'exit')
    }
  })
  function waitFor (stream: 'stdout' | 'stderr', pattern: RegExp): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const match = pattern.exec(text[stream])
        if (!match) return false
        child[stream]?.off('data', onData)
        child.off('close', onClose)
        resolve(match)
        return true
      }
      // Our own 'data' listener was added first, so `text` already holds this chunk.
      const onData = () => { check() }
      const onClose = () => {
        if (!check()) reject(new Error(`the CLI exited before writing ${pattern} on ${stream}:\n${text.stdout}\n${text.stderr}`))
      }
      if (check()) return
      child[stream]?.on('data', onData)
      child.once('close', onClose)
    })
  }
  return { child, done, waitFor }
}

/** Runs the CLI to its end. */
export function runCli (t: Test, args: string[], opts: { env?: Record<string, string>, input?: string } = {}): Promise<CliResult> {
  return cli(t, args, opts).done
}

export interface TcpProxy {
  url: string
  /** Connections made through it so far. */
  readonly connections: number
  /** Destroys every connection open now, as a network fault would; new ones still pass. */
  cut(): void
  close(): Promise<void>
}

/** A TCP pass-through to `target` (host:port URL) whose connections a test can drop. */
export async function startProxy (target: string): Promise<TcpProxy> {
  const { hostname, port } = new URL(target)
  const open = new Set<Socket>()
  let connections = 0
  const server = createTcpServer((client) => {
    connections++
    const upstream = connect(Number(port), hostname)
    open.add(client).add(upstream)
    const drop = () => {
      client.destroy()
      upstream.destroy()
      open.delete(client)
      open.delete(upstream)
    }
    client.on('error', drop).on('close', drop)
    upstream.on('error', drop).on('close', drop)
    client.pipe(upstream)
    upstream.pipe(client)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${address.port}`,
    get connections () { return connections },
    cut () {
      for (const socket of open) socket.resetAndDestroy()
    },
    close: () => new Promise((resolve) => {
      for (const socket of open) socket.destroy()
      server.close(() => resolve())
    })
  }
}

/** The lines of a text, without the empty one after the last newline. */
export function lines (text: string): string[] {
  return text.split('\n').filter((line) => line !== '')
}

/** Asserts the exit status, with stderr in the diagnostics when it differs. */
export function expectExit (t: Test, run: CliResult, code: number): void {
  t.equal(run.code, code, `exit ${code}`, { stderr: run.stderr, stdout: run.stdout.slice(-2000) })
}
