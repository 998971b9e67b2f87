// Copies what tsc does not compile but dist/ needs beside the compiled modules, which read them
// relative to import.meta.url: the Lua scripts (src/**/*.lua, loaded by src/redis/scripts.ts)
// and the worker threads' entry files (src/**/*.mjs, plain JavaScript so that a thread needs
// no TypeScript loader: src/content/fs-writer.ts).
import { cpSync, readdirSync } from 'node:fs'
import { join, relative } from 'node:path'

const src = new URL('../src/', import.meta.url).pathname
const dist = new URL('../dist/', import.meta.url).pathname
const files = readdirSync(src, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.lua') || f.endsWith('.mjs'))
for (const file of files) cpSync(join(src, file), join(dist, file))
process.stdout.write(`copied ${files.length} Lua scripts and thread files to ${relative(process.cwd(), dist) || '.'}\n`)
