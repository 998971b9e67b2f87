import t from 'tap'
import { startGateServer } from '../helpers/gate-server.js'
import { cli, expectExit, lines, runCli, startService } from './helpers.js'

// `trawl watch` on jobs submitted through the API: it follows them like get, but does not own them.

t.test('watch: follows a running job from its first event to the end, exit by the outcome', async (t) => {
  const gate = await startGateServer()
  t.teardown(gate.close)
  const { api, base } = await startService(t)
  const urls = [gate.url('/fast/0'), gate.url('/fast/1'), gate.url('/hold/2'), gate.url('/hold/3')]
  const job = (await api.app.inject({ method: 'POST', url: '/jobs', payload: { urls, options: { concurrency: 4 } } })).json()
  await gate.untilWaiting(2)

  const watch = cli(t, ['watch', '-s', base, job.id])
  // Both finished results are replayed before anything live happens.
  await watch.waitFor('stdout', /\/fast\/0 /)
  await watch.waitFor('stdout', /\/fast\/1 /)
  gate.open()
  const run = await watch.done
  expectExit(t, run, 0)
  const out = lines(run.stdout)
  t.same(out.slice(0, 4).map((l) => /^Read 1000 from (\S+) \(200, \d+ ms\)$/.exec(l)?.[1]).sort(), urls, 'every URL once')
  t.match(out[4], /^Downloaded 4 URLs in \S+ s: 4 succeeded, 0 failed$/)

  const again = await runCli(t, ['watch', '-s', base, job.id])
  t.equal(again.code, 0)
  t.same(lines(again.stdout).sort(), out.sort(), 'a finished job replays the same lines')

  const failing = (await api.app.inject({ method: 'POST', url: '/jobs', payload: { urls: [gate.url('/fast/ok'), 'http://127.0.0.1:9/refused'], options: { retries: 0 } } })).json()
  const failed = await runCli(t, ['watch', '-s', base, failing.id])
  t.equal(failed.code, 1, 'a job with a failed URL: exit 1')
  t.match(failed.stdout, /^Failed http:\/\/127\.0\.0\.1:9\/refused: CONNECT_FAILED /m)
})

t.test('watch: Ctrl-C stops watching but leaves the job running', async (t) => {
  const gate = await startGateServer()
  t.teardown(gate.close)
  const { api, base } = await startService(t)
  const job = (await api.app.inject({ method: 'POST', url: '/jobs', payload: { urls: [gate.url('/hold/a')] } })).json()
  await gate.untilWaiting(1)
  const watch = cli(t, ['watch', '-s', base, job.id])
  await watch.waitFor('stderr', /^trawl: watching job \S+ \(1 URL, running\) on /)
  watch.child.kill('SIGINT')
  const run = await watch.done
  t.equal(run.code, 130)
  t.match(run.stderr, `trawl: stopped watching job ${job.id}; it goes on on the server\n`)
  t.equal((await api.app.inject(`/jobs/${job.id}`)).json().state, 'running', 'the job goes on')
})
