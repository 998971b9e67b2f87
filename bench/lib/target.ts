import { fork } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { track } from './procs.js'

export interface TargetStats {
  requests: number
  connections: number
  /** Most requests the server was answering at once since the last reset. */
  maxInFlight: number
  /** Most requests in flight to one host (local address) at once. */
  maxPerHost: number
  /** Wall-clock ms (performance.timeOrigin based) of the first request and the last response finished. */
  firstAt: number
  lastAt: number
}

export interface Target {
  origin: string
  pid: number
  /** A distinct URL of `size` bytes answered after `latencyMs`, on 127.0.0.1 or 127.0.0.`host`. */
  url (size: number, latencyMs: number, n: number, host?: number): string
  /** Counters since the last reset; `reset` starts new ones. */
  stats (reset?: boolean): Promise<TargetStats>
  close (): Promise<void>
}

const SCRIPT = fileURLToPath(new URL('../target-server.ts', import.meta.url))

/** Forks bench/target-server.ts and waits until it listens (on `extraHosts` more loopback addresses). */
export async function startTarget (extraHosts = 0): Promise<Target> {
  const child = track(fork(SCRIPT, [`--hosts=${extraHosts}`], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  }))
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('target server did not start within 20 s')), 20_000)
    child.once('exit', (code) => reject(new Error(`target server exited (${code}) before listening`)))
    child.on('message', function onMessage (msg: { type?: string, port?: number }) {
      if (msg.type === 'listening' && typeof msg.port === 'number') {
        clearTimeout(timer)
        child.off('message', onMessage)
        resolve(msg.port)
      }
    })
  })
  const origin = `http://127.0.0.1:${port}`
  return {
    origin,
    pid: child.pid ?? -1,
    url: (size, latencyMs, n, host = 1) => `http://127.0.0.${host}:${port}/page/${size}/${latencyMs}/${n}`,
    stats: async (reset = false) => {
      const answer = new Promise<TargetStats>((resolve) => {
        child.on('message', function onMessage (msg: { type?: string } & TargetStats) {
          if (msg.type !== 'stats') return
          child.off('message', onMessage)
          resolve({ requests: msg.requests, connections: msg.connections, maxInFlight: msg.maxInFlight, maxPerHost: msg.maxPerHost, firstAt: msg.firstAt, lastAt: msg.lastAt })
        })
      })
      child.send({ type: 'stats', reset })
      return answer
    },
    close: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = once(child, 'exit')
      child.disconnect()
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    }
  }
}
