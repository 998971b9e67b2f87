import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify'
import type { Socket } from 'node:net'
import fp from 'fastify-plugin'
import { problemCatalogue, problemType, TrawlError, ValidationFailedError, type Problem, type ProblemCode } from './problems.js'
import { isRedisUnavailable } from '../redis/errors.js'

export function sendProblem (reply: FastifyReply, code: ProblemCode, detail: string, extra: Partial<Problem> = {}) {
  const { status, title } = problemCatalogue[code]
  const body: Problem = { type: problemType(code), title, status, detail, code, instance: reply.request.url.split('?')[0], ...extra }
  // Some answers leave before any hook runs (framework errors), so this one header is set here.
  reply.header('x-content-type-options', 'nosniff')
  if (code === 'UNAVAILABLE' && !reply.hasHeader('retry-after')) reply.header('retry-after', '2')
  if (code === 'UNAUTHORIZED') reply.header('www-authenticate', 'Bearer realm="trawl"')
  return reply.code(status).type('application/problem+json').send(body)
}

// Fastify's own errors that are the client's fault, mapped to the catalogue.
const fastifyCodes: Record<string, ProblemCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'VALIDATION_FAILED',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'VALIDATION_FAILED',
  FST_ERR_CTP_INVALID_JSON_BODY: 'VALIDATION_FAILED'
}

/** Turns every error into an RFC 9457 problem; the text of a 5xx never leaves the process. */
export const errorHandler = fp(async function errorHandler (app: FastifyInstance) {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (Array.isArray(err.validation)) {
      const where = err.validationContext === 'body' ? '' : `/${err.validationContext ?? 'request'}`
      const errors = err.validation.map((v) => ({ path: `${where}${v.instancePath}`, message: v.message ?? 'invalid' }))
      return sendProblem(reply, 'VALIDATION_FAILED', 'The request does not match the contract; see errors.', { errors })
    }
    if (err instanceof ValidationFailedError) {
      return sendProblem(reply, 'VALIDATION_FAILED', err.message, { errors: err.errors })
    }
    if (err instanceof TrawlError) {
      if (err.statusCode >= 500) request.log.warn({ err }, 'request failed')
      if (err.retryAfter !== undefined) reply.header('retry-after', String(err.retryAfter))
      return sendProblem(reply, err.code, err.message)
    }
    if (isRedisUnavailable(err)) {
      request.log.warn({ err }, 'redis unavailable')
      return sendProblem(reply, 'UNAVAILABLE', 'The job store does not answer; try again shortly.')
    }
    const mapped = err.code ? fastifyCodes[err.code] : undefined
    if (mapped) return sendProblem(reply, mapped, err.message)
    if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
      return sendProblem(reply, err.statusCode === 404 ? 'NOT_FOUND' : 'VALIDATION_FAILED', err.message)
    }
    request.log.error({ err }, 'unexpected error')
    return sendProblem(reply, 'INTERNAL', 'An internal error occurred; it has been logged.')
  })
  app.setNotFoundHandler((request, reply) => sendProblem(reply, 'NOT_FOUND', `No route for ${request.method} ${request.url.split('?')[0]}.`))
}, { name: 'error-handler' })

/**
 * A request too broken for Fastify to route (bad percent-encoding, an overlong path parameter)
 * still gets a problem answer.
 */
export function frameworkErrorHandler (error: FastifyError, _request: unknown, reply: FastifyReply): void {
  sendProblem(reply, 'VALIDATION_FAILED', `The request could not be read: ${error.message}`)
}

/**
 * Malformed HTTP never reaches Fastify: Node hands the socket here. It gets a problem answer
 * too, and the connection is closed.
 */
export function clientErrorHandler (_err: Error, socket: Socket): void {
  if (!socket.writable) {
    socket.destroy()
    return
  }
  const { status, title } = problemCatalogue.VALIDATION_FAILED
  const body = JSON.stringify({ type: problemType('VALIDATION_FAILED'), title, status, detail: 'The request is not valid HTTP.', code: 'VALIDATION_FAILED' })
  socket.end(`HTTP/1.1 ${status} Bad Request\r\ncontent-type: application/problem+json\r\nx-content-type-options: nosniff\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`)
}
