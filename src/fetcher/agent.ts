import dns from 'node:dns'
import type { LookupAddress, LookupAllOptions, LookupOptions } from 'node:dns'
import net from 'node:net'
import { Agent, buildConnector } from 'undici'
import type { Dispatcher } from 'undici'
import { BlockedAddressError } from './guard.js'
import type { AddressGuard } from './guard.js'

/** The User-Agent sent when the caller's headers carry none. */
export const DEFAULT_USER_AGENT = 'trawl/0.1 (+https://github.com/trawl)'

/** The resolver the guard wraps; `dns.lookup` fits it. */
export type LookupAll = (
  hostname: string,
  options: LookupAllOptions,
  callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void
) => void

export interface DispatcherOptions {
  /** Decides which addresses may be connected to. */
  guard: AddressGuard
  /** Sent unless the request carries its own `user-agent`. @defaultValue {@link DEFAULT_USER_AGENT} */
  userAgent?: string
  /** Milliseconds from opening a connection (DNS included) to ready (TLS done). @defaultValue 10000 */
  connectTimeoutMs?: number
  /**
   * Most connections open at once to one origin. A request waiting for a free connection spends
   * its own deadline, so keep this at least the worker's concurrency unless origins are to be
   * throttled. @defaultValue 50
   */
  connections?: number
  /** Milliseconds an idle keep-alive connection is kept (the server's keep-alive hint wins when shorter). @defaultValue 4000 */
  keepAliveTimeoutMs?: number
  /**
   * Backstop for the time to response headers, in milliseconds. `fetchPage` enforces the job's
   * own per-attempt deadline, so this only matters to callers that set none; it is the contract's
   * largest `timeoutMs` so that it never cuts a job's deadline short. @defaultValue 300000
   */
  headersTimeoutMs?: number
  /** Backstop for the longest silence between body chunks, in milliseconds. @defaultValue 300000 */
  bodyTimeoutMs?: number
  /** The resolver behind the guard; tests put a fake here. @defaultValue dns.lookup */
  lookup?: LookupAll
}

/**
 * Wraps a resolver so that it only ever answers with addresses the guard passed. It is handed to
 * `net.connect`/`tls.connect` as their `lookup`, so the address the socket connects to is the
 * very one that was checked: a DNS answer that changes between check and connect (rebinding)
 * has nothing to slip through.
 *
 * A name is refused when ANY of its addresses is refused, not only when all are. Which address
 * a connection uses is up to happy-eyeballs and the order of the answer, and a name that mixes
 * public and internal addresses is misconfigured at best, so refusing it keeps the outcome
 * the same on every attempt.
 */
export function createGuardedLookup (guard: AddressGuard, lookup: LookupAll = dns.lookup): net.LookupFunction {
  return (hostname: string, options: LookupOptions, callback) => {
    lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err !== null) {
        callback(err, [])
        return
      }
      const first = addresses[0]
      if (first === undefined) {
        callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND', hostname }), [])
        return
      }
      const blocked = addresses.find((a) => !guard.check(a.address))
      if (blocked !== undefined) {
        callback(new BlockedAddressError(blocked.address, hostname), [])
        return
      }
      if (options.all === true) callback(null, addresses)
      else callback(null, first.address, first.family)
    })
  }
}

type ConnectCallback = (...args: [null, net.Socket] | [Error, null]) => void

/**
 * Builds the connect function undici uses for every new connection. IP literals never reach
 * a resolver, so they are checked here, before any packet is sent; names are checked inside
 * the guarded lookup; and the address the socket ended up connected to is checked once more
 * before undici may write a request to it, so that no path around the first two gets through.
 */
function guardedConnector (guard: AddressGuard, connectTimeoutMs: number, lookup: LookupAll | undefined): buildConnector.connector {
  const base = buildConnector({ timeout: connectTimeoutMs, lookup: createGuardedLookup(guard, lookup) })
  return (options, callback) => {
    const cb = callback as ConnectCallback
    // undici has already taken the brackets off an IPv6 literal.
    const host = options.hostname
    if (net.isIP(host) !== 0 && !guard.check(host)) {
      queueMicrotask(() => cb(new BlockedAddressError(host), null))
      return
    }
    base(options, (...args) => {
      const [err, socket] = args
      if (err !== null) {
        cb(err, null)
        return
      }
      const remote = socket.remoteAddress
      if (remote === undefined || !guard.check(remote)) {
        socket.destroy()
        cb(new BlockedAddressError(remote ?? 'an unknown address', host), null)
        return
      }
      cb(null, socket)
    })
  }
}

function hasHeader (headers: Dispatcher.DispatchOptions['headers'], name: string): boolean {
  if (headers == null) return false
  if (Array.isArray(headers)) {
    // undici's flat form: [name, value, name, value, ...]
    return headers.some((v, i) => i % 2 === 0 && String(v).toLowerCase() === name)
  }
  if (Symbol.iterator in headers) {
    for (const [key] of headers as Iterable<[string, unknown]>) {
      if (key.toLowerCase() === name) return true
    }
    return false
  }
  return Object.keys(headers).some((k) => k.toLowerCase() === name)
}

function withHeader (headers: Dispatcher.DispatchOptions['headers'], name: string, value: string): Dispatcher.DispatchOptions['headers'] {
  if (headers == null) return { [name]: value }
  if (Array.isArray(headers)) return [...headers, name, value]
  if (Symbol.iterator in headers) {
    // Back to the flat form: an array of pairs would be read as a flat list.
    const flat: string[] = []
    for (const [k, v] of headers as Iterable<[string, string | string[] | undefined]>) {
      if (v === undefined) continue
      for (const one of Array.isArray(v) ? v : [v]) flat.push(k, one)
    }
    return [...flat, name, value]
  }
  return { ...headers, [name]: value }
}

/**
 * The worker's one Agent: an undici Agent whose every connection passes the address guard and
 * whose every request carries a User-Agent. Redirects are not followed here; `fetchPage` follows
 * them hop by hop, so each hop opens its connection through the guard.
 */
class GuardedAgent extends Agent {
  readonly #userAgent: string
  constructor (options: Agent.Options, userAgent: string) {
    super(options)
    this.#userAgent = userAgent
  }

  override dispatch (options: Agent.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    if (hasHeader(options.headers, 'user-agent')) return super.dispatch(options, handler)
    return super.dispatch({ ...options, headers: withHeader(options.headers, 'user-agent', this.#userAgent) }, handler)
  }
}

/** Creates the dispatcher for one worker process. Close it (`await agent.close()`) on shutdown. */
export function createDispatcher (opts: DispatcherOptions): Agent {
  const connectTimeoutMs = opts.connectTimeoutMs ?? 10_000
  return new GuardedAgent({
    connect: guardedConnector(opts.guard, connectTimeoutMs, opts.lookup),
    connections: opts.connections ?? 50,
    keepAliveTimeout: opts.keepAliveTimeoutMs ?? 4_000,
    headersTimeout: opts.headersTimeoutMs ?? 300_000,
    bodyTimeout: opts.bodyTimeoutMs ?? 300_000
  }, opts.userAgent ?? DEFAULT_USER_AGENT)
}
