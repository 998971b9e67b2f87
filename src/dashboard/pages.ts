import type { FastifyInstance } from 'fastify'

/** CSP directives in helmet's form: `{ 'script-src': ["'self'"] }`. */
export type CspDirectives = Record<string, string[]>

/**
 * Marks every route registered after this call in `app`'s (encapsulated) context as a page for
 * people:
 * - its own Content Security Policy in place of the API's `default-src 'none'`, through
 *   the route's `config.helmet` (http/protection.ts; helmet still sets every other header;
 *   routes outside this context keep the API's policy);
 * - no tenant auth (`config.tenantAuth: false`): a browser cannot send a bearer header to a page
 *   it opens. The page's files are public; admin pages check their own keys.
 */
export function usePageRoutes (app: FastifyInstance, directives: CspDirectives): void {
  // One object for every route of the context: securityHeaders builds helmet's setter once per object.
  const helmet = Object.freeze({ contentSecurityPolicy: { useDefaults: false, directives } })
  app.addHook('onRoute', (route) => {
    // A fresh config object, as configs may be shared.
    route.config = Object.assign({}, route.config, { helmet, tenantAuth: false as const })
  })
}

/**
 * The paths of the pages for people (the dashboard, the API reference, the admin pages): not
 * API operations, so not in openapi.yaml. For the contract test, which matches every other
 * served route against the spec.
 */
export function isPagePath (path: string): boolean {
  return path === '/' || path === '/*' || /^\/(dashboard|docs|admin)(\/|\*|$)/.test(path)
}
