import { connect, createServer, type Socket } from 'node:net'
import tap, { type Test } from 'tap'
import { Agent, fetch as undiciFetch, type RequestInit, type Response } from 'undici'
import type { JobDocument } from '../../../src/jobs/schemas.js'
import { startGateServer, type GateServer } from '../gate-server.js'
import { TEST_REDIS_URL } from '../redis.js'
import { startSeedSite, type SeedSite } from '../seed.js'
import { startTrawl, type TestTrawl } from '../trawl.js'
import { openSse, type SseStream } from '../sse.js'
import type { Answer } from './check.js'

// The live service the contract tests drive, and the plumbing to reach it.

export const MISSING_ID = 'j_01JAAAAAAAAAAAAAAAAAAAAAAA'
export const LONG_ID = `j_${'A'.repeat(70)}`
export const CALLBACK_SECRET = 'contract-test-secret-0123456789'
export const PROBES = new Set(['/healthz', '/readyz'])
/** Routes behind operators' keys (ADMIN_API_KEYS) rather than tenants'. */
export const OPERATOR_ROUTES = new Set(['/metrics'])
export const json = (body: unknown) => body as JobDocument

/**
 * HTTP to a listening API through an agent of the test's own, destroyed when the test ends (before
 * the API closes, teardowns run last-in first-out): an idle client socket, or one the client opened
 * and never used, would otherwise hold the server's close until the client's keep-alive runs out.
 */
export function httpClient (t: Test) {
  const agent = new Agent()
  t.teardown(() => agent.destroy())
  return { fetch: (url: string, init: RequestInit = {}) => undiciFetch(url, { ...init, dispatcher: agent }) }
}
export type HttpClient = ReturnType<typeof httpClient>

/** A fetch Response, read whole, as an Answer. */
export async function answerOf (res: Response): Promise<Answer> {
  const raw = Buffer.from(await res.arrayBuffer())
  return { statusCode: res.status, headers: Object.fromEntries(res.headers), body: raw.toString(), rawPayload: raw }
}

/** A TCP proxy in front of Redis that the test can cut and restore. */
export async function startRedisProxy () {
  const target = new URL(TEST_REDIS_URL)
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    const upstream = connect(Number(target.port || 6379), target.hostname)
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('close', () => sockets.delete(s))
      s.on('error', () => {})
    }
    client.pipe(upstream).pipe(client)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  return {
    url: `redis://127.0.0.1:${port}`,
    cut: () => new Promise<void>((resolve) => {
      server.close(() => resolve())
      for (const s of sockets) s.destroy()
    }),
    restore: () => new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve)),
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy()
      if (server.listening) server.close(() => resolve())
      else resolve()
    })
  }
}

export type Inject = (method: string, url: string, extra?: { payload?: string | object, headers?: Record<string, string> }) => Promise<Answer>

export interface ContractService {
  trawl: TestTrawl
  /** The seed's pages (odd ones gzip-encoded) and a gate whose /hold/* answers wait for the test. */
  site: SeedSite
  gate: GateServer
  /** `http://127.0.0.1:port` of the listening API, for what only a real connection shows (SSE). */
  base: string
  inject: Inject
}

/**
 * An API and a worker on a prefix of their own, listening, with a seed site and a gate server,
 * for one test file; closed when the file's tests are done. Each test makes the jobs it reads:
 * none relies on what another test left. A small MAX_URLS_PER_JOB makes bodyLimit its floor
 * (1 MiB, src/http/app.ts), so 413 is cheap; CALLBACK_SECRET lets a job carry a callback,
 * retried after 20 ms; heartbeats every 200 ms.
 */
export async function startContractService (t: Test = tap): Promise<ContractService> {
  const site = await startSeedSite()
  t.teardown(site.close)
  const gate = await startGateServer(300)
  t.teardown(gate.close)
  const trawl = await startTrawl(t, {
    env: { MAX_URLS_PER_JOB: '20', CALLBACK_SECRET, CALLBACK_RETRY_BASE_MS: '20', SSE_HEARTBEAT_MS: '200' }
  })
  const base = await trawl.api.app.listen({ port: 0, host: '127.0.0.1' })
  return { trawl, site, gate, base, inject: injector(trawl.api.app) }
}

/** `app.inject` as an Answer. */
export function injector (app: TestTrawl['api']['app']): Inject {
  return (method, url, extra = {}) => app.inject({ method: method as 'GET', url, ...extra }) as Promise<Answer>
}

/** The head of a real event stream as an Answer (its body is read as a stream instead). */
export function streamAnswer (stream: { status: number, headers: Record<string, string> }): Answer {
  return { statusCode: stream.status, headers: stream.headers, body: '', rawPayload: Buffer.alloc(0) }
}

/** A real event stream through the test's own agent, with its head as an Answer. */
export async function openStream (http: HttpClient, url: string, headers: Record<string, string> = {}): Promise<SseStream & { answer: Answer }> {
  const stream = await openSse(url, headers, http.fetch as unknown as Parameters<typeof openSse>[2])
  return { ...stream, answer: streamAnswer(stream) }
}
