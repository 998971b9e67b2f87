import { readFileSync } from 'node:fs'
import type { ChainableCommander, Redis } from 'ioredis'

/**
 * The Lua scripts, loaded once per connection with `defineCommand`, and the one typed table of
 * their KEYS and ARGV. Each `.lua` file sits with its feature and opens with a header naming
 * KEYS and ARGV in order; loading checks that header against this table, so the order lives in
 * the table and a drifted header fails at the first load rather than in production.
 * Call sites pass keys and arguments by name; `argList` puts them in the table's order.
 */

const reply = <T>() => undefined as unknown as T

const JOB_KEYS = ['meta', 'urls', 'results', 'held', 'events', 'pending', 'parked', 'parkq'] as const

export const SCRIPTS = {
  trawlStep: {
    file: '../lanes/step.lua',
    prelude: true,
    keys: JOB_KEYS,
    argv: ['lane', 'index', 'result', 'outcome', 'bytes', 'now', 'ttl', 'channel', 'claim', 'park', 'host', 'skip', 'want', 'paused'],
    // One reply per step: the script takes further steps of the same job after the first
    // (queueScriptBatch), each one more group of the same ARGV.
    reply: reply<Array<Array<number | string>>>()
  },
  trawlFinish: {
    file: '../jobs/finish.lua',
    prelude: true,
    keys: JOB_KEYS,
    argv: ['state', 'error', 'now', 'ttl', 'channel', 'result', 'tenant'],
    reply: reply<string>()
  },
  trawlAdmit: {
    file: '../tenants/admit.lua',
    prelude: false,
    keys: ['pending'],
    argv: ['n', 'max'],
    reply: reply<number>()
  },
  trawlClaimKey: {
    file: '../tenants/claim-key.lua',
    prelude: false,
    keys: ['key'],
    argv: ['value', 'ttl'],
    reply: reply<string | null>()
  },
  trawlKeepLocks: {
    file: './keep-locks.lua',
    prelude: false,
    keys: ['stalled'],
    argv: ['base', 'ids', 'tokens', 'ttl'],
    reply: reply<string[]>()
  },
  // The host scripts touch one host's keys only (its own Cluster slot), never a job's.
  trawlHostAcquire: {
    file: '../hosts/acquire.lua',
    prelude: false,
    keys: ['slots', 'state', 'job'],
    argv: ['lease', 'limit', 'leaseMs', 'delayMs', 'jobLimit'],
    reply: reply<[number, number, number]>()
  },
  trawlHostRelease: {
    file: '../hosts/release.lua',
    prelude: false,
    keys: ['slots', 'state', 'job', 'strikes'],
    argv: ['lease', 'outcome', 'pauseMs', 'baseMs', 'maxMs', 'memoryMs', 'channel', 'host'],
    reply: reply<[number, number, number]>()
  },
  trawlHostRenew: {
    file: '../hosts/renew.lua',
    prelude: false,
    keys: ['slots', 'job'],
    argv: ['leaseMs', 'ids'],
    reply: reply<number>()
  },
  trawlHostState: {
    file: '../hosts/state.lua',
    prelude: false,
    keys: ['slots', 'state', 'strikes'],
    argv: [],
    reply: reply<number[]>()
  }
} as const

// Shared helpers of the job scripts (touch, stateEvent, resultEvent), put before their body.
const PRELUDE = '../jobs/prelude.lua'

export type ScriptName = keyof typeof SCRIPTS
type Spec<N extends ScriptName> = typeof SCRIPTS[N]
interface AnySpec { file: string, prelude: boolean, keys: readonly string[], argv: readonly string[] }
/** A script's KEYS by name. */
export type ScriptKeys<N extends ScriptName> = Record<Spec<N>['keys'][number], string>
/** A script's ARGV by name; numbers are sent as their decimal text. */
export type ScriptArgs<N extends ScriptName> = Record<Spec<N>['argv'][number], string | number | Buffer>
export type ScriptReply<N extends ScriptName> = Spec<N>['reply']

const read = (file: string) => readFileSync(new URL(file, import.meta.url), 'utf8')

/** The names a header gives to `KEYS[i]` (or `ARGV[i]`), in order; throws on a gap. */
export function headerNames (source: string, kind: 'KEYS' | 'ARGV'): string[] {
  const header = /^--\[\[([\s\S]*?)\]\]/.exec(source)?.[1] ?? ''
  const names: string[] = []
  for (const m of header.matchAll(new RegExp(`^\\s*${kind}\\[(\\d+)\\]\\s+(\\w+)`, 'gm'))) {
    const [, n = '', name = ''] = m
    if (Number(n) !== names.length + 1) throw new Error(`${kind}[${n}] out of order in the script header`)
    names.push(name)
  }
  return names
}

let sources: Map<ScriptName, string> | undefined
/** Every script's text, read from disk once per process and checked against SCRIPTS. */
export function scriptSources (): ReadonlyMap<ScriptName, string> {
  if (sources) return sources
  const prelude = read(PRELUDE)
  const loaded = new Map<ScriptName, string>()
  for (const [name, spec] of Object.entries(SCRIPTS) as Array<[ScriptName, AnySpec]>) {
    const body = read(spec.file)
    for (const kind of ['KEYS', 'ARGV'] as const) {
      const want = (kind === 'KEYS' ? spec.keys : spec.argv).join(' ')
      const have = headerNames(body, kind).join(' ')
      if (have !== want) throw new Error(`${spec.file}: header names ${kind} "${have}", SCRIPTS says "${want}"`)
    }
    loaded.set(name, spec.prelude ? `${prelude}\n${body}` : body)
  }
  sources = loaded
  return loaded
}

const defined = new WeakSet<Redis>()
/** Registers every script on the connection (once; later calls do nothing). */
export function loadScripts (redis: Redis): void {
  if (defined.has(redis)) return
  for (const [name, lua] of scriptSources()) {
    redis.defineCommand(name, { numberOfKeys: SCRIPTS[name].keys.length, lua })
  }
  defined.add(redis)
}

/** KEYS then ARGV of a script, in the order its header names them. */
export function argList<N extends ScriptName> (name: N, keys: NoInfer<ScriptKeys<N>>, args: NoInfer<ScriptArgs<N>>): Array<string | Buffer> {
  return argGroups(name, keys, [args])
}

/**
 * KEYS, then one ARGV group after another, each in the order the header names them: the form
 * of a script that takes several groups on the same KEYS (step.lua: one group per step).
 */
function argGroups<N extends ScriptName> (name: N, keys: NoInfer<ScriptKeys<N>>, groups: ReadonlyArray<NoInfer<ScriptArgs<N>>>): Array<string | Buffer> {
  const spec: AnySpec = SCRIPTS[name]
  const k = keys as Record<string, string>
  const out: Array<string | Buffer> = spec.keys.map((key) => k[key] as string)
  for (const group of groups) {
    const a = group as Record<string, string | number | Buffer>
    for (const arg of spec.argv) {
      const v = a[arg] as string | number | Buffer
      out.push(typeof v === 'number' ? String(v) : v)
    }
  }
  return out
}

// What defineCommand adds, seen from here: one method per script name.
type Commands<R> = Record<ScriptName, (...args: Array<string | Buffer>) => R>

/** Runs a script on the connection (registering the scripts first if needed). */
export async function runScript<N extends ScriptName> (redis: Redis, name: N, keys: NoInfer<ScriptKeys<N>>, args: NoInfer<ScriptArgs<N>>): Promise<ScriptReply<N>> {
  loadScripts(redis)
  const commands = redis as unknown as Commands<Promise<unknown>>
  return await commands[name].apply(redis, argList(name, keys, args)) as ScriptReply<N>
}

/**
 * Queues one call of a script on a pipeline, with one ARGV group or several on the same KEYS
 * (step.lua: several steps of one job); its reply comes with the others from exec(). ioredis
 * copies the scripts into a pipeline when it creates it, so the connection must have had
 * loadScripts first.
 */
export function queueScriptBatch<N extends ScriptName> (pipeline: ChainableCommander, name: N, keys: NoInfer<ScriptKeys<N>>, groups: ReadonlyArray<NoInfer<ScriptArgs<N>>>): void {
  const commands = pipeline as unknown as Partial<Commands<ChainableCommander>>
  const command = commands[name]
  if (command === undefined) throw new Error(`script ${name} is not loaded on this connection: call loadScripts first`)
  command.apply(pipeline, argGroups(name, keys, groups))
}
