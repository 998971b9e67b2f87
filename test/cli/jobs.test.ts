import t from 'tap'
import { startGateServer } from '../helpers/gate-server.js'
import { startSeedSite } from '../helpers/seed.js'
import { expectExit, runCli, startService } from './helpers.js'

// `trawl status` and `trawl cancel` on jobs submitted through the API.

t.test('status: one line with state and counts; --json the document with every result', async (t) => {
  const site = await startSeedSite()
  t.teardown(site.close)
  const { api, base } = await startService(t)
  const job = (await api.app.inject({ method: 'POST', url: '/jobs', payload: { urls: site.urls } })).json()
  await api.app.inject(`/jobs/${job.id}?wait=30`)

  const run = await runCli(t, ['status', job.id], { env: { TRAWL_SERVER: base } })
  expectExit(t, run, 0)
  t.match(run.stdout, new RegExp(`^Job ${job.id} is completed: 15/15 done \\(15 succeeded, 0 failed, 0 cancelled, 0 running, 0 pending\\), 3\\.\\d\\d MB in \\d+\\.\\d\\d s\\n$`))
  t.equal(run.stderr, '')

  const [json, missing] = await Promise.all([
    runCli(t, ['status', '-s', base, '--json', job.id]),
    runCli(t, ['status', '-s', base, 'j_01JAAAAAAAAAAAAAAAAAAAAAAA'])
  ])
  t.equal(json.code, 0)
  const doc = JSON.parse(json.stdout)
  t.equal(doc.id, job.id)
  t.equal(doc.state, 'completed')
  t.equal(doc.results.length, 15)

  t.equal(missing.code, 3, 'an unknown job is a problem answer: exit 3')
  t.equal(missing.stderr, 'trawl: JOB_NOT_FOUND: No job with id "j_01JAAAAAAAAAAAAAAAAAAAAAAA" exists, or it has expired.\n')
})

t.test('cancel: a running job ends cancelled (exit 0); a finished or unknown job exits 1', async (t) => {
  const gate = await startGateServer()
  t.teardown(gate.close)
  const { api, base } = await startService(t)
  const job = (await api.app.inject({ method: 'POST', url: '/jobs', payload: { urls: [gate.url('/fast/a'), gate.url('/hold/b'), gate.url('/hold/c')], options: { concurrency: 1 } } })).json()
  await gate.untilWaiting(1)

  const run = await runCli(t, ['cancel', '-s', base, job.id])
  expectExit(t, run, 0)
  t.match(run.stdout, new RegExp(`^Job ${job.id} is cancelled: 3/3 done \\(1 succeeded, 0 failed, 2 cancelled, 0 running, 0 pending\\)`))
  t.equal((await api.app.inject(`/jobs/${job.id}`)).json().state, 'cancelled', 'cancelled on the server')
  await gate.untilAborted(1)

  const twice = await runCli(t, ['cancel', '-s', base, '--json', job.id])
  t.equal(twice.code, 0, 'cancelling a cancelled job again is fine')
  t.equal(JSON.parse(twice.stdout).state, 'cancelled')

  gate.open()
  const done = (await api.app.inject({ method: 'POST', url: '/jobs', payload: { urls: [gate.url('/fast/x')] } })).json()
  await api.app.inject(`/jobs/${done.id}?wait=30`)
  const [finished, unknown] = await Promise.all([
    runCli(t, ['cancel', '-s', base, done.id]),
    runCli(t, ['cancel', '-s', base, 'j_01JAAAAAAAAAAAAAAAAAAAAAAA'])
  ])
  t.equal(finished.code, 1)
  t.equal(finished.stdout, '')
  t.match(finished.stderr, /^trawl: JOB_FINISHED: Job j_\S+ has already finished \(completed\); it was left as it is\.\n$/)

  t.equal(unknown.code, 1)
  t.match(unknown.stderr, /^trawl: JOB_NOT_FOUND: /)
})
