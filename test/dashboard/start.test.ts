import { spawn } from 'node:child_process'
import { once } from 'node:events'
import t, { type Test } from 'tap'
import { testPrefix } from '../helpers/redis.js'
import { ROOT, testEnv } from '../helpers/trawl.js'

// `trawl all` as `npm start` runs it, on a real terminal (a pseudo-terminal from util-linux's
// `script`) and on a pipe: the first line it prints says where the service is.

// eslint-disable-next-line no-control-regex -- colour codes, stripped to read the text
const plain = (s: string) => s.replace(/\u001b\[[0-9;]*[A-Za-z]/g, '').replace(/\r/g, '')

/** Runs `trawl all` until it has printed `until`, then stops it with SIGTERM; its output. */
async function firstLines (t: Test, tty: boolean, until: RegExp): Promise<string[]> {
  const env = { PATH: process.env.PATH ?? '', ...testEnv(testPrefix(t), { LOG_LEVEL: 'info', PORT: '0', METRICS_PORT: '0' }) }
  const node = `${process.execPath} --import tsx src/main.ts all`
  // A process group of its own, so the terminal, trawl and anything it started stop together.
  const child = tty
    ? spawn('script', ['-qfec', node, '/dev/null'], { cwd: ROOT, env, detached: true, stdio: ['pipe', 'pipe', 'ignore'] })
    : spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'all'], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'ignore'] })
  const exited = once(child, 'exit')
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(-(child.pid ?? 0), 'SIGKILL')
      await exited
    }
  })
  let text = ''
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      text += chunk.toString()
      if (until.test(plain(text))) resolve()
    })
    child.once('exit', (code) => reject(new Error(`trawl exited (${code}) before printing ${until}: ${text}`)))
  })
  process.kill(-(child.pid ?? 0), 'SIGTERM')
  await exited
  return plain(text).split('\n').filter((l) => l.trim() !== '')
}

t.test('on a terminal: readable lines, and the first one says where to go', async (t) => {
  const lines = await firstLines(t, true, /worker started/)
  t.match(lines[0], /INFO.*trawl is up: dashboard http:\/\/127\.0\.0\.1:\d+\/, API reference http:\/\/127\.0\.0\.1:\d+\/docs, Redis redis:\/\/127\.0\.0\.1:6379, content store fs \/\S*trawl-test-content-/)
  t.notOk(lines.some((l) => l.startsWith('{')), 'no JSON on a terminal')
  const worker = lines.findIndex((l) => /worker started/.test(l))
  t.ok(worker > 0, 'the worker says it started after that')
  t.ok(lines.slice(1, worker).some((l) => /WARN.*API_KEYS is not set/.test(l)), 'the start-up warnings follow the first line')
})

t.test('on a pipe: JSON lines, the whereabouts first, with its fields', async (t) => {
  const lines = (await firstLines(t, false, /worker started/)).map((l) => JSON.parse(l) as Record<string, string>)
  t.match(lines[0], { msg: /^trawl is up/, address: /^http:\/\/127\.0\.0\.1:\d+$/, dashboard: /\/$/, docs: /\/docs$/, redis: 'redis://127.0.0.1:6379', contentStore: /^fs \/\S*trawl-test-content-/ })
  t.ok(lines.findIndex((l) => l.msg === 'worker started') > 0)
})
