import { execFile } from 'node:child_process'
import { mkdtemp, rmdir, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { ROOT } from './trawl.js'

const run = promisify(execFile)
const git = async (args: string[]): Promise<string> => (await run('git', ['-C', ROOT, ...args], { encoding: 'utf8' })).stdout

/** A second checkout of this repository at another commit, for `--ab=<git-ref>`. */
export interface Checkout {
  /** The checkout's directory: run its `src/main.ts` with it as the working directory. */
  dir: string
  /** The commit the ref named when the checkout was made. */
  commit: string
  /** Removes the checkout (and its worktree entry); safe to call twice. */
  remove (): Promise<void>
}

/**
 * `git worktree add --detach` of `ref` in a temporary directory, with this checkout's
 * node_modules linked in, so both sides run the same dependencies and only the code differs.
 * Where the commits' package-lock.json differ (a dependency added or removed between them),
 * the checkout gets its own `npm ci` instead: the other side could not start on ours.
 */
export async function checkout (ref: string): Promise<Checkout> {
  const commit = (await git(['rev-parse', '--verify', '--end-of-options', `${ref}^{commit}`])).trim()
  const dir = join(await mkdtemp(join(tmpdir(), 'trawl-bench-ab-')), 'trawl')
  await git(['worktree', 'add', '--detach', dir, commit])
  const sameLock = await git(['diff', '--quiet', commit, '--', 'package-lock.json']).then(() => true, () => false)
  if (sameLock) {
    await symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'))
  } else {
    process.stdout.write(`${ref}'s package-lock.json differs from this checkout's: npm ci in its checkout\n`)
    await run('npm', ['ci', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: dir, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 })
  }
  let removed: Promise<void> | undefined
  const remove = () => (removed ??= (async () => {
    // --force: node_modules (a link, or the checkout's own) is untracked; git unlinks a link without following it.
    await git(['worktree', 'remove', '--force', dir])
    await rmdir(dirname(dir))
  })())
  return { dir, commit, remove }
}
