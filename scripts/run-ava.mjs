// Runs ava twice — the parallel suites, then the measuring ones alone (see ava.measure.config.mjs)
// — always both, with the TAP reporter, and prints one total line CI tools read:
// `ava: N passed, N failed, N skipped`. The counts come from the TAP stream itself, so they are
// right whether or not a test failed (ava's default reporter prints no pass count on failure).
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

const runs = [[], ['--config', 'ava.measure.config.mjs']];
const total = { passed: 0, failed: 0, skipped: 0 };

function run(args) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['node_modules/ava/entrypoints/cli.mjs', '--tap', ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const counts = { passed: 0, failed: 0, skipped: 0 };
    createInterface({ input: child.stdout }).on('line', (line) => {
      process.stdout.write(`${line}\n`);
      if (/^not ok \d+/.test(line)) counts.failed++;
      else if (/^ok \d+.*# (SKIP|TODO)/i.test(line)) counts.skipped++;
      else if (/^ok \d+/.test(line)) counts.passed++;
    });
    child.on('close', (code, signal) => {
      // A run that died without reporting a failure (a crash, a signal) still fails.
      if ((code !== 0 || signal) && counts.failed === 0) {
        console.error(`ava ${args.join(' ') || '(parallel suites)'} exited with ${signal ?? `code ${code}`}`);
        counts.failed = 1;
      }
      resolve(counts);
    });
  });
}

for (const args of runs) {
  const counts = await run(args);
  for (const key of Object.keys(total)) total[key] += counts[key];
}
console.log(`ava: ${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`);
process.exitCode = total.failed > 0 ? 1 : 0;
