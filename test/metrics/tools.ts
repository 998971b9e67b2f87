import { spawn } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'

/**
 * Finds a Debian `prometheus` package binary (`promtool`, `prometheus`) on PATH. A missing one
 * fails the test with what to do, rather than skipping it.
 */
export function requireBinary (name: 'promtool' | 'prometheus'): string {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const path = join(dir, name)
    try {
      accessSync(path, constants.X_OK)
      return path
    } catch {}
  }
  throw new Error(`${name} is not installed: run \`apt-get install -y prometheus\` (.ci/run does it when it is missing)`)
}

/** Runs `promtool check metrics` on a scrape's text; resolves to its exit code and output. */
export async function promtoolCheck (text: string): Promise<{ code: number | null, output: string }> {
  const child = spawn(requireBinary('promtool'), ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (c: Buffer) => { output += c.toString() })
  child.stderr.on('data', (c: Buffer) => { output += c.toString() })
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', resolve)
  })
  child.stdin.end(text)
  return { code: await exited, output }
}
