import { spawn, spawnSync } from 'node:child_process'
import { EventEmitter } from 'node:events'
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Writable } from 'node:stream'
import { runCli } from '../../src/cli/index.js'
import { fileNameFor, MANIFEST } from '../../src/cli/save.js'
import { track } from './procs.js'

/**
 * `trawl get -o DIR` against `aria2c -i LIST -d DIR -j C` on the same URLs, writing the same
 * files (the aria2 list names each file as trawl does). trawl's client runs in the bench process
 * through runCli, the code `trawl get` runs, so Node's own start-up (about a second with tsx
 * from the sources) is left out; aria2c is a fresh process each run, its start-up included
 * (a few ms).
 */

/** aria2c on PATH, installed from Debian when missing (apt-get, as the bench's set-up). */
export function ensureAria2 (log: (line: string) => void): void {
  if (spawnSync('aria2c', ['--version'], { stdio: 'ignore' }).status === 0) return
  log('aria2c is not on PATH: installing it with apt-get install -y aria2')
  const apt = spawnSync('apt-get', ['install', '-y', 'aria2'], { stdio: ['ignore', 'ignore', 'inherit'] })
  if (apt.status !== 0 || spawnSync('aria2c', ['--version'], { stdio: 'ignore' }).status !== 0) {
    throw new Error('could not install aria2 (apt-get install -y aria2 failed); install it and run again')
  }
  log('installed aria2 from Debian')
}

const sink = (): Writable => new Writable({ write (_chunk, _enc, done) { done() } })

export interface GetRun {
  ms: number
  /** Body files written (the manifest not counted). */
  files: number
  exitCode: number
  jobId: string | null
}

export type RunCli = typeof runCli

const clients = new Map<string, Promise<RunCli>>()

/** `runCli` of the checkout at `root` (an `--ab` side), loaded once into this process through tsx; this one's when undefined. */
export async function clientOf (root: string | undefined): Promise<RunCli> {
  if (root === undefined) return runCli
  let loaded = clients.get(root)
  if (loaded === undefined) {
    loaded = import(pathToFileURL(join(root, 'src/cli/index.ts')).href).then((m: { runCli: RunCli }) => m.runCli)
    clients.set(root, loaded)
  }
  return await loaded
}

/**
 * One `trawl get -o dir` run against `server`, in this process, with the client of the checkout
 * at `root` (this one by default), so that an A/B of the `get -o` rows measures both sides' clients.
 */
export async function trawlGet (server: string, listFile: string, dir: string, concurrency: number, parallel: number, root?: string): Promise<GetRun> {
  const run = await clientOf(root)
  let stderr = ''
  const errors = new Writable({ write (chunk: Buffer, _enc, done) { stderr += chunk.toString(); done() } })
  const t0 = performance.now()
  const exitCode = await run(
    ['get', '-s', server, '-f', listFile, '-o', dir, '-c', String(concurrency), '--parallel', String(parallel), '--retries', '0'],
    { stdout: sink(), stderr: errors, env: {}, signals: new EventEmitter() }
  )
  const ms = performance.now() - t0
  if (exitCode !== 0) process.stdout.write(`  ! trawl get exited ${exitCode}: ${stderr.slice(-500)}\n`)
  const files = (await readdir(dir)).filter((f) => f !== MANIFEST).length
  return { ms, files, exitCode, jobId: /job (j_\w+)/.exec(stderr)?.[1] ?? null }
}

/** One `aria2c -i list -d dir -j concurrency` run. */
export async function aria2Get (listFile: string, dir: string, concurrency: number): Promise<GetRun> {
  const t0 = performance.now()
  const child = track(spawn('aria2c', [
    '-i', listFile, '-d', dir, '-j', String(concurrency),
    '--quiet=true', '--file-allocation=none', '--allow-overwrite=true', '--auto-file-renaming=false',
    '--summary-interval=0', '--max-tries=1', '--connect-timeout=10', '--timeout=30'
  ], { stdio: ['ignore', 'ignore', 'pipe'] }))
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const exitCode = await new Promise<number>((resolve) => child.once('exit', (code) => resolve(code ?? -1)))
  const ms = performance.now() - t0
  if (exitCode !== 0) process.stdout.write(`  ! aria2c exited ${exitCode}: ${stderr.slice(-500)}\n`)
  const files = (await readdir(dir)).length
  return { ms, files, exitCode, jobId: null }
}

export interface GetLists {
  /** One URL a line, for trawl get -f. */
  trawl: string
  /** The aria2 input file: each URL with `out=` the name trawl gives its file. */
  aria2: string
  /** A fresh empty directory for one run. */
  freshDir (side: string): Promise<string>
  remove (): Promise<void>
}

/** Writes both URL lists into a temporary folder. */
export async function writeLists (urls: readonly string[], contentType: string): Promise<GetLists> {
  const root = join(tmpdir(), `trawl-bench-geto-${process.pid}-${Date.now()}`)
  await mkdir(root, { recursive: true })
  const trawl = join(root, 'urls.txt')
  const aria2 = join(root, 'aria2.txt')
  await writeFile(trawl, urls.join('\n') + '\n')
  await writeFile(aria2, urls.map((u, i) => `${u}\n  out=${fileNameFor(i, urls.length, u, contentType)}\n`).join(''))
  return {
    trawl,
    aria2,
    async freshDir (side) {
      const dir = join(root, side)
      await rm(dir, { recursive: true, force: true })
      await mkdir(dir)
      return dir
    },
    remove: () => rm(root, { recursive: true, force: true })
  }
}
