import neostandard, { plugins } from 'neostandard'

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'node_modules/**', '.tap/**', 'coverage/**'] }),
  {
    files: ['src/**/*.ts'],
    ignores: ['src/config.ts'],
    plugins: { n: plugins.n },
    rules: { 'n/no-process-env': 'error', 'no-console': 'error' }
  }
]
