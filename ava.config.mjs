// Suites that measure the process itself (CPU share, RSS, event-loop delay) run on their own,
// after the rest: see ava.measure.config.mjs. Everything else runs in parallel processes.
export const measured = ['__test__/sabotage.spec.ts'];

export default {
  files: ['__test__/**/*.spec.ts', ...measured.map((file) => `!${file}`)],
  typescript: {
    rewritePaths: { '__test__/': 'build/__test__/' },
    compile: false,
  },
  timeout: '2m',
  workerThreads: false,
};
