import { spawnSync } from 'node:child_process'
import t from 'tap'
import { ROOT } from '../helpers/trawl.js'

// `trawl all` on a machine with no Redis (what the README's `npm start` does on a fresh
// machine) starts a private redis-server. The test runs it in a network namespace of its own
// (`unshare -n`, as root), whose loopback has no Redis on 6379 and nothing of other tests.

const canUnshare = spawnSync('unshare', ['-n', 'true']).status === 0

t.test('a start-up that fails stops the private Redis it started', { skip: canUnshare ? false : 'needs unshare -n (root)' }, async (t) => {
  // In the namespace: loopback up, port 3999 taken, `trawl all` told to listen there; then
  // every socket still listening, apart from the one holding 3999.
  const script = `
    ip link set lo up
    node -e "require('net').createServer().listen(3999, '127.0.0.1'); setTimeout(() => process.exit(0), 60000)" &
    holder=$!
    until ss -ltnH 'sport = :3999' | grep -q 3999; do sleep 0.05; done
    env -i PATH="$PATH" HOME="$HOME" PORT=3999 HOST=127.0.0.1 LOG_LEVEL=error timeout 60 node --import tsx src/main.ts all
    echo "exit=$?"
    sleep 0.3
    ss -ltnH | grep -v ':3999 ' | sed 's/^/left /'
    kill $holder
  `
  const run = spawnSync('unshare', ['-n', 'sh', '-c', script], { cwd: ROOT, encoding: 'utf8', timeout: 90_000 })
  t.match(run.stderr, /EADDRINUSE/, 'the start-up fails because the port is taken')
  t.match(run.stdout, /^exit=1$/m, 'trawl exits with status 1')
  t.notMatch(run.stdout, /^left /m, `nothing of it is left listening (the private Redis is stopped): ${run.stdout.trim()}`)
})
