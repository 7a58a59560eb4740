export default {
  files: ['__test__/**/*.spec.ts'],
  typescript: {
    rewritePaths: { '__test__/': 'build/__test__/' },
    compile: false,
  },
  timeout: '2m',
  workerThreads: false,
};
