// Copies the Lua scripts (src/**/*.lua) into dist/ beside the compiled modules that read them
// relative to import.meta.url (src/redis/scripts.ts); tsc copies only what it compiles.
import { cpSync, readdirSync } from 'node:fs'
import { join, relative } from 'node:path'

const src = new URL('../src/', import.meta.url).pathname
const dist = new URL('../dist/', import.meta.url).pathname
const files = readdirSync(src, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.lua'))
for (const file of files) cpSync(join(src, file), join(dist, file))
process.stdout.write(`copied ${files.length} Lua scripts to ${relative(process.cwd(), dist) || '.'}\n`)
