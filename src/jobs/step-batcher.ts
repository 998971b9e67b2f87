import type { Redis } from 'ioredis'
import { queueScriptBatch, type ScriptArgs, type ScriptKeys, type ScriptReply } from '../redis/scripts.js'

/** One step of a lane, as redis-store.ts asks for it: step.lua's KEYS and one group of its ARGV. */
export type StepCall = { keys: ScriptKeys<'trawlStep'>, args: ScriptArgs<'trawlStep'> }
/** The reply to one step (step.lua answers one per step of a call). */
export type StepReplyRaw = ScriptReply<'trawlStep'>[number]

/** Steps of one job in one script call, at most: a call runs them back to back and holds Redis meanwhile. */
const STEPS_PER_CALL = 32

/**
 * Steps asked for in one turn of the event loop (many lanes finishing together) go to Redis as
 * one pipeline, and those of the same job as one call of step.lua (up to STEPS_PER_CALL): each
 * step stays atomic and runs as if it were a call of its own, while the round trips, wake-ups
 * and the script's per-call cost are shared. On the 10,000 x 2 KB bench a flush carries ~10
 * steps, nearly all of one job.
 */
export function stepBatcher (redis: Redis): (call: StepCall) => Promise<StepReplyRaw> {
  type Queued = { call: StepCall, resolve: (r: StepReplyRaw) => void, reject: (e: unknown) => void }
  let queued: Queued[] = []
  function flush () {
    const byJob = new Map<ScriptKeys<'trawlStep'>, Queued[]>()
    for (const q of queued) {
      // The store hands every step of a job the same keys object (its tenant's pending count
      // among them); a step with another object of equal keys just goes in a call of its own.
      const same = byJob.get(q.call.keys)
      if (same === undefined) byJob.set(q.call.keys, [q])
      else same.push(q)
    }
    queued = []
    const calls: Queued[][] = []
    for (const steps of byJob.values()) {
      for (let i = 0; i < steps.length; i += STEPS_PER_CALL) calls.push(steps.slice(i, i + STEPS_PER_CALL))
    }
    const pipeline = redis.pipeline()
    for (const steps of calls) queueScriptBatch(pipeline, 'trawlStep', (steps[0] as Queued).call.keys, steps.map((q) => q.call.args))
    pipeline.exec().then((replies) => {
      calls.forEach((steps, i) => {
        const [err, reply] = replies?.[i] ?? [new Error('no reply'), null]
        const answers = err ? [] : reply as StepReplyRaw[]
        steps.forEach((q, j) => {
          const one = answers[j]
          if (err) q.reject(err)
          else if (one === undefined) q.reject(new Error(`step.lua answered ${answers.length} of ${steps.length} steps`))
          else q.resolve(one)
        })
      })
    }, (err: unknown) => { for (const steps of calls) for (const q of steps) q.reject(err) })
  }
  return (call) => new Promise((resolve, reject) => {
    if (queued.push({ call, resolve, reject }) === 1) setImmediate(flush)
  })
}
