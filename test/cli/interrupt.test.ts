import t from 'tap'
import { startGateServer } from '../helpers/gate-server.js'
import { cli, expectExit, lines, startService } from './helpers.js'

t.test('Ctrl-C during get cancels the job on the server and exits 130', async (t) => {
  const gate = await startGateServer()
  t.teardown(gate.close)
  const { api, base } = await startService(t)
  const urls = [gate.url('/fast/0'), ...Array.from({ length: 5 }, (_, i) => gate.url(`/hold/${i}`))]
  const get = cli(t, ['get', '-s', base, '--concurrency', '3', ...urls])
  const [, id] = await get.waitFor('stderr', /^trawl: job (j_[0-9A-Z]{26}) /m)
  await gate.untilWaiting(3)
  await get.waitFor('stdout', /^Read 1000 from \S+\/fast\/0 /m)

  get.child.kill('SIGINT')
  const run = await get.done
  expectExit(t, run, 130)
  t.match(run.stderr, `trawl: interrupted: cancelling job ${id}\n`)
  const doc = (await api.app.inject(`/jobs/${id}`)).json()
  t.equal(doc.state, 'cancelled', 'the job is cancelled on the server')
  t.same(doc.counts, { pending: 0, running: 0, succeeded: 1, failed: 0, cancelled: 5 })
  await gate.untilAborted(3)

  const out = lines(run.stdout)
  t.equal(out.filter((l) => /^Failed \S+\/hold\/\d: CANCELLED /.test(l)).length, 5, 'each cancelled URL has its line')
  t.match(out.at(-1), /^Downloaded 6 URLs in \S+ s: 1 succeeded, 0 failed, 5 cancelled$/, 'and the summary counts them')
})
