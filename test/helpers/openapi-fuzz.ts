import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse } from 'yaml'
import { ROOT } from './trawl.js'

/**
 * A small, deterministic fuzzer driven by openapi.yaml: it builds valid instances of a schema
 * from the document (types, bounds, required members, enums, patterns) and then breaks them one
 * place at a time, the way a careless or hostile client would. Whether a mutated instance is
 * still valid is for the caller to decide (with a JSON Schema validator over the same schema).
 */

export type Schema = Record<string, unknown>

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** openapi.yaml of this tree, or of the main checkout beside it until the lead copies it over. */
export function specPath (): string {
  const own = join(ROOT, 'openapi.yaml')
  return existsSync(own) ? own : join(ROOT, '..', 'main', 'openapi.yaml')
}

export function loadSpec (): Schema {
  return parse(readFileSync(specPath(), 'utf8')) as Schema
}

function pointer (root: unknown, ref: string): unknown {
  let node = root
  for (const raw of ref.replace(/^#\//, '').split('/')) {
    const key = raw.replaceAll('~1', '/').replaceAll('~0', '~')
    if (!isObject(node) || !(key in node)) throw new Error(`$ref does not resolve: ${ref}`)
    node = node[key]
  }
  return node
}

/**
 * The schema with every local `$ref` replaced by what it names and every `allOf` merged into one
 * object (members and `required` united): a plain JSON Schema both the generator and a
 * validator can use on their own.
 */
export function inline (root: unknown, node: unknown, depth = 0): Schema {
  if (depth > 30) throw new Error('schema too deep (a $ref cycle?)')
  if (!isObject(node)) return {}
  let out: Schema = {}
  if (typeof node.$ref === 'string') out = inline(root, pointer(root, node.$ref), depth + 1)
  const rest: Schema = { ...node }
  delete rest.$ref
  if (Array.isArray(rest.allOf)) {
    for (const member of rest.allOf) out = merge(out, inline(root, member, depth + 1))
    delete rest.allOf
  }
  for (const [k, v] of Object.entries(rest)) {
    if (k === 'properties' && isObject(v)) {
      out.properties = { ...(isObject(out.properties) ? out.properties : {}), ...Object.fromEntries(Object.entries(v).map(([p, s]) => [p, inline(root, s, depth + 1)])) }
    } else if ((k === 'items' || k === 'additionalProperties' || k === 'propertyNames') && isObject(v)) {
      out[k] = inline(root, v, depth + 1)
    } else if ((k === 'oneOf' || k === 'anyOf') && Array.isArray(v)) {
      out[k] = v.map((m) => inline(root, m, depth + 1))
    } else if (k === 'required' && Array.isArray(v)) {
      out.required = [...new Set([...(Array.isArray(out.required) ? out.required : []), ...v])]
    } else {
      out[k] = v
    }
  }
  return out
}

function merge (a: Schema, b: Schema): Schema {
  const out: Schema = { ...a, ...b }
  if (isObject(a.properties) || isObject(b.properties)) out.properties = { ...(a.properties as Schema), ...(b.properties as Schema) }
  if (Array.isArray(a.required) || Array.isArray(b.required)) out.required = [...new Set([...(a.required as string[] ?? []), ...(b.required as string[] ?? [])])]
  return out
}

/** mulberry32: a tiny seeded PRNG, so every run tries the same cases. */
export function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

// Strings for `pattern`ed members: the generator picks one the pattern accepts.
const STRING_POOL = [
  'http://127.0.0.1:9/a', 'https://example.org/', 'HTTP://EXAMPLE.ORG/Path?q=1#f', 'https://example.org:8443/x/y?z=%20',
  'http://[::1]:9/v6', 'https://xn--bcher-kva.example/', 'http://user:pass@example.org/',
  'accept-language', 'x-trace', 'X-Custom_Header.1', 'user-agent', 'if-none-match',
  'en', 'text/html; q=0.9', '"etag"', 'caf\u00e9', '', 'a\tb'
]

export interface Mutant {
  /** The JSON text to send. */
  raw: string
  /** What was changed, for the failure report. */
  note: string
  /** True when the change makes the text something the server must refuse whatever the schema says (bad JSON, prototype keys). */
  mustRefuse: boolean
  /** The parsed value, when `raw` is plain JSON of it (for a schema validator). */
  value?: unknown
}

const typesOf = (s: Schema): string[] => (Array.isArray(s.type) ? s.type as string[] : typeof s.type === 'string' ? [s.type] : [])

export class Fuzzer {
  readonly random: () => number
  constructor (seed: number) { this.random = prng(seed) }

  int (lo: number, hi: number): number { return lo + Math.floor(this.random() * (hi - lo + 1)) }
  pick<T> (items: readonly T[]): T { return items[Math.floor(this.random() * items.length)] as T }
  chance (p: number): boolean { return this.random() < p }

  /** A valid instance of `s`. */
  valid (s: Schema): unknown {
    if (Array.isArray(s.enum)) return this.pick(s.enum)
    if ('const' in s) return s.const
    if (Array.isArray(s.oneOf)) return this.valid(this.pick(s.oneOf as Schema[]))
    const type = typesOf(s).find((x) => x !== 'null') ?? (isObject(s.properties) ? 'object' : 'string')
    switch (type) {
      case 'object': return this.validObject(s)
      case 'array': {
        const min = Number(s.minItems ?? 0)
        const n = this.int(min, Math.min(Number(s.maxItems ?? 4), min + 3))
        return Array.from({ length: n }, () => this.valid(isObject(s.items) ? s.items : {}))
      }
      case 'integer': case 'number': {
        const min = Number(s.minimum ?? 0)
        const max = Number(s.maximum ?? min + 1000)
        if (this.chance(0.25)) return this.pick([min, max])
        const v = min + this.random() * (max - min)
        return type === 'integer' ? Math.round(v) : Math.round(v * 100) / 100
      }
      case 'boolean': return this.chance(0.5)
      default: return this.validString(s)
    }
  }

  private validObject (s: Schema): Record<string, unknown> {
    const out: Record<string, unknown> = {}
    const props = isObject(s.properties) ? s.properties as Record<string, Schema> : {}
    const required = new Set(Array.isArray(s.required) ? s.required as string[] : [])
    for (const [name, ps] of Object.entries(props)) {
      if (required.has(name) || this.chance(0.6)) out[name] = this.valid(ps)
    }
    if (Object.keys(props).length === 0 && isObject(s.additionalProperties)) {
      const names = isObject(s.propertyNames) ? s.propertyNames : {}
      const n = this.int(0, Math.min(3, Number(s.maxProperties ?? 3)))
      for (let i = 0; i < n; i++) out[this.validString(names)] = this.valid(s.additionalProperties)
    }
    return out
  }

  private validString (s: Schema): string {
    const max = Number(s.maxLength ?? 64)
    if (typeof s.pattern === 'string') {
      const re = new RegExp(s.pattern, 'u')
      const fits = STRING_POOL.filter((x) => re.test(x) && x.length <= max && x.length >= Number(s.minLength ?? 0))
      if (fits.length > 0) return this.pick(fits)
    }
    const n = this.int(Number(s.minLength ?? 1), Math.min(max, 12))
    return Array.from({ length: n }, () => String.fromCharCode(this.int(0x61, 0x7a))).join('')
  }

  /** `value` (an instance of `s`) broken in one place. */
  mutate (s: Schema, value: unknown): Mutant {
    if (this.chance(0.15)) return this.mutateText(value)
    const copy = structuredClone(value)
    const { value: mutated, note } = this.mutateAt(s, copy, '')
    return { raw: JSON.stringify(mutated) ?? 'null', note, mustRefuse: false, value: mutated }
  }

  private mutateAt (s: Schema, v: unknown, path: string): { value: unknown, note: string } {
    // Descend into a member or item most of the time, so that deep places get broken too.
    if (isObject(v) && Object.keys(v).length > 0 && this.chance(0.6)) {
      const key = this.pick(Object.keys(v))
      const props = isObject(s.properties) ? s.properties as Record<string, Schema> : {}
      const child = props[key] ?? (isObject(s.additionalProperties) ? s.additionalProperties : {})
      const r = this.mutateAt(child, v[key], `${path}/${key}`)
      v[key] = r.value
      return { value: v, note: r.note }
    }
    if (Array.isArray(v) && v.length > 0 && this.chance(0.6)) {
      const i = this.int(0, v.length - 1)
      const r = this.mutateAt(isObject(s.items) ? s.items : {}, v[i], `${path}/${i}`)
      v[i] = r.value
      return { value: v, note: r.note }
    }
    const types = typesOf(s)
    const options: Array<() => { value: unknown, note: string }> = [
      () => {
        const other = this.pick([null, true, 0, -1, 1.5, 'x', '', [], {}, [null], { a: 1 }])
        return { value: other, note: `${path || '/'}: ${JSON.stringify(other)} instead of ${types.join('|') || 'any'}` }
      }
    ]
    if (types.includes('integer') || types.includes('number')) {
      const n = (x: number, why: string) => () => ({ value: x, note: `${path}: ${why} (${x})` })
      if (typeof s.minimum === 'number') options.push(n(s.minimum - 1, 'below minimum'), n(-1e300, 'far below minimum'))
      if (typeof s.maximum === 'number') options.push(n(s.maximum + 1, 'above maximum'), n(1e300, 'far above maximum'), n(Number.MAX_SAFE_INTEGER + 2, 'past 2^53'))
      if (types.includes('integer')) options.push(n(Number(s.minimum ?? 0) + 0.5, 'not an integer'))
      options.push(() => ({ value: String(v), note: `${path}: the number as a string` }))
    }
    if (types.includes('string')) {
      const str = (x: string, why: string) => () => ({ value: x, note: `${path}: ${why}` })
      const base = typeof v === 'string' ? v : 'x'
      if (typeof s.maxLength === 'number') options.push(str(base + 'a'.repeat(Math.max(1, s.maxLength + 1 - base.length)), 'one past maxLength'))
      options.push(
        str('', 'empty'), str(base + '\u0000', 'a NUL'), str(base + '\r\nx-injected: 1', 'CR LF'), str(`${base}\ud800`, 'a lone surrogate'),
        str(`${base}\u202e\u200b\ufeff`, 'bidi and zero-width characters'), str('\u{1F600}'.repeat(50), 'emoji'), str('a'.repeat(100_000), '100,000 characters'),
        str('javascript:alert(1)', 'a javascript: URL'), str('file:///etc/passwd', 'a file: URL'), str(`  ${base}  `, 'blanks around'),
        str('http://', 'a scheme and nothing'), str('http://a b.test/', 'a space in the host'), str('http://127.0.0.1:99999/', 'a port past 65535')
      )
    }
    if (types.includes('array')) {
      options.push(() => ({ value: [], note: `${path}: empty array` }))
      if (typeof s.maxItems === 'number' && Array.isArray(v) && v.length > 0) {
        const max = s.maxItems
        options.push(() => ({ value: Array.from({ length: max + 1 }, (_, i) => (v as unknown[])[i % (v as unknown[]).length]), note: `${path}: ${max + 1} items (maxItems + 1)` }))
      }
      options.push(() => ({ value: [...(Array.isArray(v) ? v : []), { nested: [1, 2, 3] }], note: `${path}: an object among the items` }))
    }
    if (types.includes('object') || isObject(s.properties)) {
      const obj = isObject(v) ? v : {}
      const required = Array.isArray(s.required) ? s.required as string[] : []
      if (required.length > 0) {
        options.push(() => {
          const drop = this.pick(required)
          const { [drop]: _dropped, ...rest } = obj
          return { value: rest, note: `${path}: without required ${drop}` }
        })
      }
      options.push(() => ({ value: { ...obj, zUnknown: 1 }, note: `${path}: an unknown member` }))
      options.push(() => ({ value: { ...obj, constructor: { prototype: { polluted: 'yes' } } }, note: `${path}: constructor.prototype` }))
      if (typeof s.maxProperties === 'number') {
        const max = s.maxProperties
        options.push(() => ({ value: Object.fromEntries(Array.from({ length: max + 1 }, (_, i) => [`x-h${i}`, 'v'])), note: `${path}: ${max + 1} members (maxProperties + 1)` }))
      }
      if (isObject(s.additionalProperties)) {
        for (const name of ['Host', 'connection', 'Transfer-Encoding', 'bad name', 'a:b', '', 'x\u00e9']) {
          options.push(() => ({ value: { ...obj, [name]: 'v' }, note: `${path}: header ${JSON.stringify(name)}` }))
        }
      }
    }
    return this.pick(options)()
  }

  /** Breaks the JSON text itself: what a schema validator never sees. */
  private mutateText (value: unknown): Mutant {
    const text = JSON.stringify(value) ?? 'null'
    // Added last, so that it wins over a member of the same name (JSON.parse keeps the last one).
    const withMember = (member: string) => text.startsWith('{') && text.length > 2 ? `${text.slice(0, -1)},${member}}` : `{${member}}`
    const choices: Mutant[] = [
      { raw: text.slice(0, this.int(0, Math.max(0, text.length - 1))), note: 'truncated JSON', mustRefuse: true },
      { raw: withMember('"__proto__":{"polluted":"yes"}'), note: '__proto__ at the top', mustRefuse: true },
      { raw: text.replace('"options":{', '"options":{"__proto__":{"polluted":"yes"},'), note: '__proto__ in options', mustRefuse: text.includes('"options":{') },
      { raw: text.replace('"headers":{', '"headers":{"__proto__":{"polluted":"yes"},'), note: '__proto__ in headers', mustRefuse: text.includes('"headers":{') },
      { raw: withMember('"constructor":{"prototype":{"polluted":"yes"}}'), note: 'constructor.prototype at the top', mustRefuse: true },
      { raw: withMember(`"urls":${'['.repeat(5000)}${']'.repeat(5000)}`), note: 'urls nested 5,000 deep', mustRefuse: true },
      { raw: `${text} trailing`, note: 'trailing garbage', mustRefuse: true },
      { raw: `${text.slice(0, -1)},}`, note: 'a trailing comma', mustRefuse: true },
      { raw: text.replace(/"/g, "'"), note: 'single quotes', mustRefuse: text.includes('"') },
      { raw: `\ufeff${text}`, note: 'a byte order mark', mustRefuse: false },
      { raw: text.replace(/:(\d+)/, ':1e400'), note: 'a number past double range', mustRefuse: /:\d/.test(text) },
      { raw: text.replace(/:(\d+)/, ':-0'), note: 'minus zero', mustRefuse: false }
    ]
    return this.pick(choices)
  }
}
