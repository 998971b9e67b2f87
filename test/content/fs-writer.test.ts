import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { SmallFileWriter } from '../../src/content/fs-writer.js'

// The fs store's small-body writer, on its own: what the store relies on when it hands a small
// body over. A body that comes alone is written in place; one that comes right behind another
// goes to the thread.

async function folder (t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'trawl-writer-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

t.test('bodies handed over at once all land whole under their names, in a folder made on the way', async (t) => {
  const root = await folder(t)
  const writer = new SmallFileWriter()
  t.teardown(() => writer.close())
  const dir = join(root, 'job')
  await Promise.all(Array.from({ length: 300 }, (_, i) => writer.write(dir, join(dir, `.tmp-${i}`), join(dir, String(i)), Buffer.from(`body ${i}`), i % 2 === 0)))
  const names = await readdir(dir)
  t.equal(names.length, 300, 'no temporary file is left')
  t.notOk(names.some((n) => n.startsWith('.tmp-')))
  t.equal(await readFile(join(dir, '299'), 'utf8'), 'body 299')
})

t.test('a write that fails rejects with the system error and leaves nothing; the next one works', async (t) => {
  const root = await folder(t)
  const writer = new SmallFileWriter()
  t.teardown(() => writer.close())
  const blocked = join(root, 'blocked')
  await writeFile(blocked, 'a file where the folder should be')
  await t.rejects(writer.write(blocked, join(blocked, '.tmp-0'), join(blocked, '0'), Buffer.from('x'), false), { code: 'ENOTDIR' }, 'written in place')
  const dir = join(root, 'fine')
  const [first, second] = await Promise.allSettled([
    writer.write(dir, join(dir, '.tmp-0'), join(dir, '0'), Buffer.from('y'), false),
    writer.write(blocked, join(blocked, '.tmp-1'), join(blocked, '1'), Buffer.from('x'), false)
  ])
  t.equal(first.status, 'fulfilled')
  t.match(second, { status: 'rejected', reason: { code: 'ENOTDIR' } }, 'by the thread, right behind another: the same error')
  t.same(await readdir(dir), ['0'])
  t.same((await readdir(root)).sort(), ['blocked', 'fine'])
})

t.test('close waits for the writes in flight, and refuses any after it', async (t) => {
  const root = await folder(t)
  const writer = new SmallFileWriter()
  const writes = Array.from({ length: 50 }, (_, i) => writer.write(root, join(root, `.tmp-${i}`), join(root, String(i)), Buffer.alloc(2048, i), false))
  await writer.close()
  t.equal((await readdir(root)).length, 50, 'every write in flight landed before close resolved')
  await Promise.all(writes)
  await t.rejects(writer.write(root, join(root, '.tmp-x'), join(root, 'x'), Buffer.from('late'), false), /closed/)
  await writer.close()
})
