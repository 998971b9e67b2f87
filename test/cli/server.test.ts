import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { startGateServer } from '../helpers/gate-server.js'
import { cli, closedPort, expectExit, lines, runCli, startProxy, startService } from './helpers.js'

// What the client does when the server is missing, refuses, drops the stream, or is not trawl.

t.test('no server: exit 3 with one line naming it', async (t) => {
  const port = await closedPort()
  const [get, status, cancel] = await Promise.all([
    runCli(t, ['get', '-s', `http://127.0.0.1:${port}`, 'http://example.org/']),
    runCli(t, ['status', 'j_01JAAAAAAAAAAAAAAAAAAAAAAA'], { env: { TRAWL_SERVER: `http://127.0.0.1:${port}` } }),
    runCli(t, ['cancel', '-s', `http://127.0.0.1:${port}`, 'j_01JAAAAAAAAAAAAAAAAAAAAAAA'])
  ])
  for (const run of [get, status, cancel]) {
    t.equal(run.code, 3)
    t.equal(run.stdout, '')
    t.equal(run.stderr, `trawl: cannot reach http://127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}\n`)
  }
})

t.test('a problem answer: exit 3 with its code, detail and field errors', async (t) => {
  const { base } = await startService(t, { worker: false })
  const run = await runCli(t, ['get', '-s', base, '--concurrency', '5000', 'http://example.org/'])
  t.equal(run.code, 3)
  t.equal(run.stdout, '')
  t.match(run.stderr, /^trawl: VALIDATION_FAILED: .+\n {2}\/options\/concurrency: .+\n$/)
})

t.test('an answer that is not trawl\'s: exit 3, not a crash', async (t) => {
  const server: Server = createServer((req, res) => {
    res.writeHead(req.method === 'POST' ? 202 : 200, { 'content-type': 'application/json' }).end('{"hello":"world"}')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  const { port } = server.address() as AddressInfo
  const run = await runCli(t, ['get', '-s', `http://127.0.0.1:${port}`, 'http://example.org/'])
  t.equal(run.code, 3)
  t.match(run.stderr, /^trawl: the server's answer for the submitted job is not a trawl document at \/\w+: .+\n$/)
})

t.test('a dropped event stream is resumed with Last-Event-ID: every URL once, nothing lost', async (t) => {
  const gate = await startGateServer()
  t.teardown(gate.close)
  const { base } = await startService(t)
  const proxy = await startProxy(base)
  t.teardown(proxy.close)
  const urls = [...Array.from({ length: 3 }, (_, i) => gate.url(`/fast/${i}`)), ...Array.from({ length: 3 }, (_, i) => gate.url(`/hold/${i}`))]
  const get = cli(t, ['get', '-s', proxy.url, '--concurrency', '6', ...urls])
  await gate.untilWaiting(3)
  for (const i of [0, 1, 2]) await get.waitFor('stdout', new RegExp(`/fast/${i} `))

  proxy.cut()
  await get.waitFor('stderr', /event stream of job \S+ dropped \(.+\); reconnecting in 2\.0 s \(1\/5\)/)
  gate.open()
  const run = await get.done
  expectExit(t, run, 0)
  const out = lines(run.stdout)
  t.same(out.slice(0, 6).map((l) => /^Read 1000 from (\S+) /.exec(l)?.[1]).sort(), urls.sort(), 'each URL exactly once')
  t.match(out[6], /^Downloaded 6 URLs in \S+ s: 6 succeeded, 0 failed$/)
  t.ok(proxy.connections >= 2, 'it connected again')
})
