import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js'
import addFormatsModule from 'ajv-formats'
import { parse } from 'yaml'
import { ROOT } from '../trawl.js'

// openapi.yaml as the contract tests read it: the document, its references, and validators for
// a copy whose response objects are closed (the code must send no member the document does not
// name). Shared by every file of test/contract/.

export type Schema = Record<string, unknown>

export interface HeaderObject {
  $ref?: string
  required?: boolean
  schema?: Schema
}

export interface ResponseObject {
  $ref?: string
  description?: string
  headers?: Record<string, HeaderObject>
  content?: Record<string, { schema?: Schema, 'x-itemSchema'?: Schema }>
}

export interface ParameterObject {
  $ref?: string
  name: string
  in: string
  required?: boolean
  schema: Schema
}

export interface Operation {
  operationId?: string
  security?: Array<Record<string, string[]>>
  parameters?: ParameterObject[]
  responses: Record<string, ResponseObject>
}

export const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const
export type Method = typeof METHODS[number]
export type PathItem = Partial<Record<Method, Operation>> & { parameters?: unknown[] }

export interface OpenApi {
  openapi: string
  security?: unknown
  paths: Record<string, PathItem>
  webhooks: Record<string, PathItem>
  components: {
    schemas: Record<string, Schema>
    responses: Record<string, ResponseObject>
    headers: Record<string, HeaderObject>
    parameters: Record<string, ParameterObject>
    securitySchemes: Record<string, Schema>
  }
}

const SPEC_FILE = join(ROOT, 'openapi.yaml')
export const spec = parse(readFileSync(SPEC_FILE, 'utf8')) as OpenApi

// The id the (rewritten) document is registered under in Ajv; every local $ref is made absolute.
const SPEC_ID = 'https://trawl.invalid/openapi.json'

export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Follows one `$ref` (local, `#/...`) in the original document. */
export function deref<T> (node: T & { $ref?: string }): T {
  let current: unknown = node
  for (let hops = 0; isObject(current) && typeof current.$ref === 'string'; hops++) {
    if (hops > 10) throw new Error(`$ref loop at ${String(current.$ref)}`)
    current = pointer(spec, current.$ref)
  }
  return current as T
}

/** The node at a local reference such as `#/components/schemas/Problem`, or throws. */
export function pointer (root: unknown, ref: string): unknown {
  if (!ref.startsWith('#/')) throw new Error(`not a local $ref: ${ref}`)
  let node = root
  for (const raw of ref.slice(2).split('/')) {
    const key = decodeURIComponent(raw).replaceAll('~1', '/').replaceAll('~0', '~')
    if (!isObject(node) || !(key in node)) throw new Error(`$ref does not resolve: ${ref}`)
    node = node[key]
  }
  return node
}

/** Every `$ref` string anywhere in a node. */
export function refsIn (node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const v of node) refsIn(v, out)
  else if (isObject(node)) {
    for (const [k, v] of Object.entries(node)) {
      if (k === '$ref' && typeof v === 'string') out.push(v)
      else refsIn(v, out)
    }
  }
  return out
}

export function * operationsOf (items: Record<string, PathItem>): Generator<[path: string, method: Method, op: Operation]> {
  for (const [path, item] of Object.entries(items)) {
    for (const m of METHODS) {
      const op = item[m]
      if (op) yield [path, m, op]
    }
  }
}

/**
 * The spec leaves its response objects open (clients should tolerate new members), but the code
 * must not send members the spec does not name: the copy the tests validate against closes every
 * object schema with `unevaluatedProperties: false`. A schema that is a base of an `allOf` stays
 * open itself; the schema that extends it is closed and so covers the base's members too.
 */
function closeSchemas (doc: OpenApi): void {
  const bases = new Set<string>()
  for (const node of allNodes(doc)) {
    if (!Array.isArray(node.allOf)) continue
    for (const member of node.allOf) {
      if (isObject(member) && typeof member.$ref === 'string') bases.add(member.$ref)
    }
  }
  const close = (s: unknown, isBase: boolean): void => {
    if (!isObject(s)) return
    if (!isBase && (isObject(s.properties) || Array.isArray(s.allOf))) s.unevaluatedProperties = false
    if (isObject(s.properties)) for (const p of Object.values(s.properties)) close(p, false)
    close(s.items, false)
    close(s.additionalProperties, false)
    if (Array.isArray(s.allOf)) for (const m of s.allOf) close(m, true)
    for (const list of [s.oneOf, s.anyOf]) if (Array.isArray(list)) for (const m of list) close(m, false)
  }
  for (const [name, s] of Object.entries(doc.components.schemas)) close(s, bases.has(`#/components/schemas/${name}`))
  const responses = [
    ...Object.values(doc.components.responses),
    ...[...operationsOf(doc.paths)].flatMap(([, , op]) => Object.values(op.responses))
  ]
  for (const r of responses) for (const media of Object.values(r.content ?? {})) close(media.schema, false)
}

export function * allNodes (node: unknown): Generator<Record<string, unknown>> {
  if (Array.isArray(node)) for (const v of node) yield * allNodes(v)
  else if (isObject(node)) {
    yield node
    for (const v of Object.values(node)) yield * allNodes(v)
  }
}

function absolutize (doc: unknown): void {
  for (const node of allNodes(doc)) {
    if (typeof node.$ref === 'string' && node.$ref.startsWith('#/')) node.$ref = `${SPEC_ID}${node.$ref}`
  }
}

const closed = structuredClone(spec)
closeSchemas(closed)
absolutize(closed)

// `strict: false`: OpenAPI keywords such as `example` are not JSON Schema.
const ajv = new Ajv2020({ strict: false, allErrors: true })
addFormatsModule.default(ajv)
ajv.addSchema(closed as unknown as Schema, SPEC_ID)
const headerAjv = new Ajv2020({ strict: false, allErrors: true, coerceTypes: true })
addFormatsModule.default(headerAjv)

const compiled = new Map<string, ValidateFunction>()

/** A validator for the schema at a local reference, in the closed copy of the document. */
export function validatorAt (ref: string): ValidateFunction {
  let validate = compiled.get(ref)
  if (!validate) {
    validate = ajv.compile(pointer(closed, ref) as Schema)
    compiled.set(ref, validate)
  }
  return validate
}

/** A validator for a schema in the document as written (open objects), e.g. request bodies. */
export function openValidatorAt (ref: string): ValidateFunction {
  const key = `open:${ref}`
  let validate = compiled.get(key)
  if (!validate) {
    const open = structuredClone(pointer(spec, ref)) as Schema
    absolutize(open)
    validate = ajv.compile(open)
    compiled.set(key, validate)
  }
  return validate
}

/** Does a header value match a documented header schema (values are strings, so types are coerced)? */
export function headerMatches (schema: Schema, value: string): { ok: boolean, errors: unknown } {
  const validate = headerAjv.compile(deref(schema))
  return { ok: validate(value), errors: validate.errors }
}

export const escape = (segment: string) => segment.replaceAll('~', '~0').replaceAll('/', '~1')

/** `/jobs/{id}` -> `/jobs/:id` */
export const toFastifyPath = (path: string) => path.replaceAll(/\{([^}]+)\}/g, ':$1')

/** Every documented operation as `METHOD /path/{param}`. */
export function documentedOperations (): string[] {
  return [...operationsOf(spec.paths)].map(([path, m]) => `${m.toUpperCase()} ${path}`)
}

/**
 * Every documented answer (method, path, status), and each answer of each webhook. `default`
 * (500 INTERNAL, "an unexpected error") is left out: no request can produce it without a bug.
 */
export function documentedAnswers (): string[] {
  const answers = (items: Record<string, PathItem>, kind: string) => [...operationsOf(items)].flatMap(([path, m, op]) =>
    Object.keys(op.responses).filter((s) => kind !== '' || s !== 'default').map((s) => `${kind}${m.toUpperCase()} ${path} ${s}`))
  return [...answers(spec.paths, ''), ...answers(spec.webhooks, 'WEBHOOK ')]
}

// The event schemas, read from the document: event name -> the schema of its `data` JSON.
const eventStreamMedia = spec.paths['/jobs/{id}/events']?.get?.responses['200']?.content?.['text/event-stream']
export const eventVariants = new Map<string, string>()
for (const member of (deref(deref(eventStreamMedia?.['x-itemSchema'] ?? {})).oneOf as Schema[] | undefined) ?? []) {
  const variant = deref(member) as { properties: { event: { const: string }, data: { contentSchema: { $ref: string } } } }
  eventVariants.set(variant.properties.event.const, variant.properties.data.contentSchema.$ref)
}

export const schemas = spec.components.schemas
export const props = (name: string) => (deref(schemas[name] ?? {}).properties ?? {}) as Record<string, Schema>
