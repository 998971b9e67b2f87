import type { FastifySchemaCompiler, FastifySchemaValidationError } from 'fastify'
import type { ZodType } from 'zod'

/** RFC 6901: `~` and `/` inside a key are escaped; the whole document is the empty pointer. */
export function jsonPointer (path: ReadonlyArray<PropertyKey>): string {
  return path.map((p) => `/${String(p).replaceAll('~', '~0').replaceAll('/', '~1')}`).join('')
}

/**
 * Validates with zod, as fastify-type-provider-zod's compiler does, but keeps each issue's path
 * as a proper JSON pointer, which the problem answers' `errors` promise.
 */
export const validatorCompiler: FastifySchemaCompiler<ZodType> = ({ schema }) => (data) => {
  const result = schema.safeParse(data)
  if (result.success) return { value: result.data }
  const errors: FastifySchemaValidationError[] = result.error.issues.map((issue) => ({
    keyword: issue.code,
    instancePath: jsonPointer(issue.path),
    schemaPath: '',
    params: {},
    message: issue.message
  }))
  return { error: errors as unknown as Error }
}
