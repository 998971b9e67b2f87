import t from 'tap'
import { runCli as runInProcess } from '../../src/cli/index.js'
import { runCli } from './helpers.js'

// Usage errors end with exit 2 before anything is sent; help is not an error. Most cases run
// in this process (they never reach a server); the rest go through `src/main.ts` as a user would.

function memory () {
  return { text: '', write (chunk: string) { this.text += chunk; return true } }
}

async function inProcess (argv: string[]) {
  const stdout = memory()
  const stderr = memory()
  const code = await runInProcess(argv, { stdout, stderr, env: {} })
  return { code, stdout: stdout.text, stderr: stderr.text }
}

t.test('usage errors exit 2 and say what is wrong', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['get', 'not a url'], /^trawl: not an http or https URL: "not a url"\n$/],
    [['get', 'ftp://example.org/x'], /^trawl: not an http or https URL: "ftp:\/\/example.org\/x"\n$/],
    [['get', '--concurrency', 'many', 'http://example.org/'], /argument 'many' is invalid\. expected a whole number of at least 1/],
    [['get', '--retries', '-1', 'http://example.org/'], /argument '-1' is invalid\. expected a whole number\n/],
    [['get', '--max-bytes', '10Q', 'http://example.org/'], /expected a size such as 1048576, 512k or 10M/],
    [['get', '--bogus', 'http://example.org/'], /unknown option '--bogus'/],
    [['get', '-o', '/tmp/x', '--no-keep-content', 'http://example.org/'], /^trawl: -o saves the bodies the server kept; it cannot go with --no-keep-content\n$/],
    [['get', '-f', '/nonexistent/urls.txt'], /^trawl: cannot read \/nonexistent\/urls\.txt: ENOENT/],
    [['get', '-o', 'package.json/pages', 'http://example.org/'], /^trawl: cannot create package.json\/pages: ENOTDIR/],
    [['get', '-s', 'ftp://example.org', 'http://example.org/'], /^trawl: --server must be an http or https URL, not ftp:\n$/],
    [['get', '-s', 'example', 'http://example.org/'], /^trawl: --server "example" is not an absolute URL\n$/],
    [['status'], /missing required argument 'id'/],
    [['watch'], /missing required argument 'id'/],
    [['cancel', 'a', 'b'], /too many arguments/],
    [['fetch'], /unknown command 'fetch'/]
  ]
  for (const [args, pattern] of cases) {
    const run = await inProcess(args)
    t.equal(run.code, 2, `trawl ${args.join(' ')}: exit 2`)
    t.match(run.stderr, pattern)
    t.equal(run.stdout, '')
  }
})

t.test('help: usage on stdout, exit 0', async (t) => {
  for (const command of ['get', 'status', 'watch', 'cancel']) {
    const run = await inProcess([command, '--help'])
    t.equal(run.code, 0)
    t.match(run.stdout, new RegExp(`^Usage: trawl ${command} \\[options\\]`))
    t.match(run.stdout, '--server <url>')
  }
  const get = await inProcess(['get', '--help'])
  for (const flag of ['--file', '--concurrency', '--timeout', '--retries', '--max-bytes', '--no-keep-content', '--output', '--json']) {
    t.match(get.stdout, flag)
  }
  t.match(get.stdout, /Exit status: 0 all succeeded/)
})

t.test('through main.ts: help exits 0, no URLs exits 2', async (t) => {
  const [help, none] = await Promise.all([runCli(t, ['get', '--help']), runCli(t, ['get'])])
  t.equal(help.code, 0)
  t.match(help.stdout, /^Usage: trawl get \[options\] \[urls\.\.\.\]/)
  t.equal(none.code, 2)
  t.equal(none.stderr, 'trawl: no URLs given: name them as arguments or with -f FILE\n')
})

t.test('through main.ts: a server role takes no arguments, exit 2 with the usage', async (t) => {
  const runs = await Promise.all([runCli(t, ['all', 'worker']), runCli(t, ['worker', '--concurrency=2']), runCli(t, ['serve'])])
  const [extra, flag, unknown] = runs
  t.equal(extra?.stderr, 'trawl: unexpected argument "worker" after all\nusage: trawl <api|worker|all>\n       trawl <get|status|watch|cancel> ... (trawl get --help)\n')
  t.match(flag?.stderr, /^trawl: unexpected argument "--concurrency=2" after worker\nusage: trawl <api\|worker\|all>\n/)
  t.match(unknown?.stderr, /^trawl: unknown command "serve"\nusage: trawl <api\|worker\|all>\n/)
  for (const run of runs) {
    t.equal(run.code, 2)
    t.equal(run.stdout, '', 'nothing started, nothing logged')
  }
})
