import { fileURLToPath } from 'node:url'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'
import { usePageRoutes } from '../dashboard/pages.js'

/** openapi.yaml at the package root: two levels up from both src/docs/ and dist/docs/. */
export const OPENAPI_PATH = fileURLToPath(new URL('../../openapi.yaml', import.meta.url))

// Swagger UI's page loads its bundle, preset and initializer from /docs/static and fetches the
// spec from /docs/json: all from this origin. Its React views set styles through the DOM, which
// a CSP without 'unsafe-inline' allows; its logo is a data: URL. It inserts one <style> element
// of its own, allowed by its hash (swagger-ui 5 as @fastify/swagger-ui 6.1 ships it; another
// version may need another hash: the browser test reports the violation with the new one).
const SWAGGER_UI_STYLE = "'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='"
const DOCS_CSP = {
  'default-src': ["'none'"],
  'script-src': ["'self'"],
  'style-src': ["'self'", SWAGGER_UI_STYLE],
  'img-src': ["'self'", 'data:'],
  'font-src': ["'self'", 'data:'],
  'connect-src': ["'self'"],
  'base-uri': ["'none'"],
  'form-action': ["'none'"],
  'frame-ancestors': ["'none'"]
}

/**
 * `GET /docs`: the API reference, rendered by Swagger UI from openapi.yaml as it is written
 * (static mode: the routes are not introspected), with every asset served from the package.
 * Encapsulated: the `swagger` decorator and the page CSP stay inside this plugin.
 */
export async function docsRoutes (app: FastifyInstance, opts: { specPath?: string } = {}): Promise<void> {
  usePageRoutes(app, DOCS_CSP)
  await app.register(swagger, {
    mode: 'static',
    specification: { path: opts.specPath ?? OPENAPI_PATH, baseDir: fileURLToPath(new URL('../../', import.meta.url)) }
  })
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    // No call to validator.swagger.io: nothing leaves this origin.
    validatorUrl: false,
    // BaseLayout: no top bar with its box for loading some other spec URL.
    uiConfig: { layout: 'BaseLayout', deepLinking: true, tryItOutEnabled: false, displayRequestDuration: true },
    theme: { title: 'trawl API reference' }
  })
}
