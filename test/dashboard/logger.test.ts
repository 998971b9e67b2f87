import { PassThrough } from 'node:stream'
import t from 'tap'
import { createLogger, logWhereabouts, maskUrl, startupHold } from '../../src/logger.js'

// What `npm start` prints: readable on a terminal, JSON elsewhere, and where to go first.
function output (isTTY: boolean): { out: PassThrough & { isTTY?: boolean }, text: () => string } {
  const out: PassThrough & { isTTY?: boolean } = new PassThrough()
  out.isTTY = isTTY
  let text = ''
  out.on('data', (chunk: Buffer) => { text += chunk.toString() })
  return { out, text: () => text }
}

t.test('JSON when stdout is not a terminal, with the whereabouts as fields', async (t) => {
  const { out, text } = output(false)
  const logger = createLogger({ LOG_LEVEL: 'info' }, out)
  logWhereabouts(logger, { address: 'http://0.0.0.0:3000', redisUrl: 'redis://:s3cret@redis:6379/2', contentStore: 'fs ./data/content' })
  logger.flush()
  await new Promise((resolve) => setImmediate(resolve))
  const line = JSON.parse(text().trim().split('\n')[0] as string)
  t.equal(line.dashboard, 'http://localhost:3000/', 'an unspecified bind address becomes one a browser can open')
  t.equal(line.docs, 'http://localhost:3000/docs')
  t.equal(line.redis, 'redis://:***@redis:6379/2')
  t.equal(line.contentStore, 'fs ./data/content')
  t.notMatch(text(), 's3cret', 'the Redis password never reaches the log')
})

t.test('readable lines on a terminal, at LOG_LEVEL', async (t) => {
  const { out, text } = output(true)
  const logger = createLogger({ LOG_LEVEL: 'warn' }, out)
  logger.info('not shown at warn')
  logger.warn({ jobId: 'j_1' }, 'shown')
  await new Promise((resolve) => setImmediate(resolve))
  t.notMatch(text(), 'not shown')
  t.match(text(), /WARN.*shown/)
  // eslint-disable-next-line no-control-regex -- colour codes, stripped to read the text
  t.match(text().replace(/\u001b\[[0-9;]*m/g, ''), /jobId: "j_1"/)
  t.throws(() => JSON.parse(text()), 'not JSON')
})

t.test('maskUrl', async (t) => {
  t.equal(maskUrl('redis://127.0.0.1:6379'), 'redis://127.0.0.1:6379')
  t.equal(maskUrl('rediss://user:pw@host:6380'), 'rediss://user:***@host:6380')
  t.equal(maskUrl('redis://token@host'), 'redis://***@host')
  t.equal(maskUrl('not a url'), '[unparsable url]')
})

t.test('a start-up hold: the whereabouts line first, then the held lines in order; errors at once', async (t) => {
  const { out, text } = output(false)
  const hold = startupHold()
  const logger = createLogger({ LOG_LEVEL: 'info' }, out, hold)
  logger.warn('API_KEYS is not set')
  logger.child({ role: 'api' }).info('plugin ready')
  logger.error('an error is not held')
  await new Promise((resolve) => setImmediate(resolve))
  t.same(lines(text()).map((l) => l.msg), ['an error is not held'], 'only the error so far')
  hold.release(() => logWhereabouts(logger, { address: 'http://127.0.0.1:3000', redisUrl: 'redis://127.0.0.1:6379', contentStore: 'fs ./data/content' }))
  logger.info('after')
  hold.release()
  await new Promise((resolve) => setImmediate(resolve))
  const msgs = lines(text()).map((l) => l.msg as string)
  t.match(msgs[1], /^trawl is up: dashboard http:\/\/127\.0\.0\.1:3000\//)
  t.same(msgs.slice(2), ['API_KEYS is not set', 'plugin ready', 'after'], 'then what was held, in order, and what comes after')
  t.equal(lines(text())[3]?.role, 'api', "a child logger's bindings survive the hold")
})

function lines (text: string): Array<Record<string, unknown>> {
  return text.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>)
}
