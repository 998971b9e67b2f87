import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import t from 'tap'
import { startSeedSite } from '../helpers/seed.js'
import { ROOT } from '../helpers/trawl.js'
import { startService } from './helpers.js'

// On a terminal, `trawl get` draws a live bar under the URL lines. util-linux `script` gives the
// child a pseudo-terminal; without it this test has nothing to run on.

const hasScript = spawnSync('script', ['--version'], { stdio: 'ignore' }).status === 0

t.test('a terminal gets the progress bar; the lines and the summary stay', { skip: hasScript ? false : 'no util-linux script' }, async (t) => {
  const site = await startSeedSite()
  t.teardown(site.close)
  const { base } = await startService(t)
  const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`
  const command = [process.execPath, '--import', 'tsx', 'src/main.ts', 'get', '-s', base, ...site.urls].map(quote).join(' ')
  // -e: exit with the child's status; -q: no banner; /dev/null: no typescript file.
  const child = spawn('script', ['-qec', command, '/dev/null'], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', TERM: 'xterm' }, stdio: ['pipe', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let raw = ''
  child.stdout.setEncoding('utf8').on('data', (s: string) => { raw += s })
  const [code] = await once(child, 'exit')
  t.equal(code, 0, 'exit 0', { output: raw })

  /* eslint-disable no-control-regex -- terminal escape sequences are what this test reads */
  const ansi = /\x1b\[[0-9;?]*[A-Za-z]|\x1b[78]/g
  t.match(raw, /\x1b\[\?25l/, 'the cursor is hidden while the bar runs')
  t.match(raw, /\x1b\[\?25h/, 'and shown again')
  /* eslint-enable no-control-regex */
  t.match(raw.replace(ansi, ''), /[=-]{30} \d+\/15 \| \d+\.\d+ [kM]B \| \d+\.\d+ [kM]B\/s \| \d+\.\d s/, 'the bar: done/total, bytes, rate, elapsed')
  // Each control sequence moves the cursor: read what is between them as separate lines.
  const text = raw.replace(ansi, '\n').replaceAll('\r', '\n')
  t.equal(text.split('\n').filter((l) => /^Read \d+ from http:\/\/127\.0\.0\.1:\d+\/wiki\/\S+ \(200, \d+ ms\)$/.test(l)).length, 15, 'a line per URL above the bar')
  t.match(text, /^Downloaded 15 URLs in \d+\.\d\d s: 15 succeeded, 0 failed$/m, 'the summary after the bar is gone')
})
