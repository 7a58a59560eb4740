// Instructions per operation, counted by valgrind's callgrind: the same total for the same
// binary and input whatever else the machine runs, so small overhead ratios hold on a shared
// 2-core machine where wall-clock figures swing.
//
// Each group of callgrind-workload.ts runs in one process under callgrind, which dumps its
// counts at every mark: one dump per run of n operations of one operation. Operations and
// their baselines alternate, round after round, in the same process; the figure is the median
// over the rounds of (instructions of the run) / n, with the spread beside it.
// Run: npm run bench:callgrind   (HAVOC_CALLGRIND_N, HAVOC_CALLGRIND_ROUNDS to change them)
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GROUPS } from './callgrind-workload.js';
import { median } from './stats.js';

const ROUNDS = Number(process.env.HAVOC_CALLGRIND_ROUNDS ?? 5);
const N: Record<keyof typeof GROUPS, number> = {
  decide: Number(process.env.HAVOC_CALLGRIND_N ?? 4000),
  sql: Number(process.env.HAVOC_CALLGRIND_N ?? 4000),
  // A request costs ~15 decides: fewer of them give as many instructions per run.
  http: Math.ceil(Number(process.env.HAVOC_CALLGRIND_N ?? 4000) / 4),
};
// The HTTP pair is the one figure that moves between processes (how V8 compiled the server that
// time shifts the bare request by up to ~7%, for the same binary): it runs in several processes,
// and the figure is the median of their same-process ratios.
const HTTP_PROCESSES = Number(process.env.HAVOC_CALLGRIND_HTTP_PROCESSES ?? 5);
const WORKLOAD = path.join(__dirname, 'callgrind-workload.js');
// V8 compiles and collects garbage on helper threads, whose share would vary from run to run;
// with one thread and fixed seeds the work is the same every time.
const NODE_FLAGS = ['--single-threaded', '--random-seed=1', '--hash-seed=1', '--expose-gc'];

function valgrindVersion(): string {
  try {
    return execFileSync('valgrind', ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('valgrind is not installed (Debian: apt-get install valgrind)');
  }
}

const totals = (file: string): number => {
  const match = /^(?:summary|totals): (\d+)/m.exec(readFileSync(file, 'utf8'));
  if (!match) throw new Error(`no totals in ${file}`);
  return Number(match[1]);
};

/** Instructions `callgrind_annotate` attributes to the addon in one dump: 0 when nothing called into it. */
function addonInstructions(file: string): number {
  const annotated = execFileSync('callgrind_annotate', ['--threshold=100', file], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  let total = 0;
  for (const line of annotated.split('\n')) {
    const match = /^\s*([\d,]+) .*\[[^\]]*havoc\.[^\]]*\.node\]/.exec(line);
    if (match) total += Number(match[1]!.replaceAll(',', ''));
  }
  return total;
}

/** Instructions in the addon during each run of the operations that must not cross into it. */
const NO_CROSSING = ['decide-idle', 'interceptor-idle'];
const addonShare: Record<string, number[]> = {};

/** Instructions per operation, every round, for each operation of `group`. */
function measure(group: keyof typeof GROUPS, dir: string, copy = 0): Record<string, number[]> {
  const ops = GROUPS[group];
  const n = N[group];
  const prefix = path.join(dir, `${group}-${copy}`);
  const started = Date.now();
  const run = spawnSync(
    'valgrind',
    [
      '--tool=callgrind',
      '--dump-before=uv_os_getpriority',
      `--callgrind-out-file=${prefix}.%p`,
      process.execPath,
      ...NODE_FLAGS,
      WORKLOAD,
      group,
      String(n),
      String(ROUNDS),
    ],
    { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  if (run.status !== 0) throw new Error(`${group} exited with ${run.status ?? run.signal}:\n${run.stderr.slice(-3000)}`);
  // <group>.<pid>.<k>: the k-th dump. A mark dumps twice, around a collection: part 1 is
  // startup and warm-up, then a collection and a run by turns, so part 3 + 2 × (round × ops + i)
  // is the i-th operation of that round.
  const parts = new Map<number, number>();
  const files = new Map<number, string>();
  for (const file of readdirSync(dir)) {
    const match = new RegExp(`^${group}-${copy}\\.\\d+\\.(\\d+)$`).exec(file);
    if (match) {
      parts.set(Number(match[1]), totals(path.join(dir, file)));
      files.set(Number(match[1]), path.join(dir, file));
    }
  }
  const expected = 2 * (1 + ROUNDS * ops.length);
  if (parts.size !== expected) throw new Error(`${group}: ${parts.size} dumps, expected ${expected}`);
  const result: Record<string, number[]> = Object.fromEntries(ops.map((op) => [op, []]));
  for (let round = 0; round < ROUNDS; round++) {
    ops.forEach((op, i) => {
      const part = 3 + 2 * (round * ops.length + i);
      result[op]!.push(parts.get(part)! / n);
      if (NO_CROSSING.includes(op)) (addonShare[op] ??= []).push(addonInstructions(files.get(part)!));
    });
  }
  process.stderr.write(
    `  ${group}: ${ops.length} operations × ${ROUNDS} rounds × ${n} in ${((Date.now() - started) / 1000).toFixed(0)} s\n`,
  );
  return result;
}

interface Row {
  measure: string;
  'instructions/op': number;
  spread: string;
  'ratio to baseline': number | string;
  baseline: string;
}

function main(): void {
  const version = valgrindVersion();
  console.log(`${version}, node ${process.version} ${NODE_FLAGS.join(' ')}, ${ROUNDS} rounds`);
  const dir = mkdtempSync(path.join(tmpdir(), 'havoc-callgrind-'));
  try {
    const runs: Record<string, number[]> = {};
    const only = process.env.HAVOC_CALLGRIND_GROUPS?.split(',');
    const groups = (Object.keys(GROUPS) as (keyof typeof GROUPS)[]).filter((g) => !only || only.includes(g));
    const httpRatios: number[] = [];
    for (const [i, group] of groups.entries()) {
      process.stderr.write(`[${i + 1}/${groups.length}] ${group} (${GROUPS[group].join(', ')})\n`);
      if (group !== 'http') {
        Object.assign(runs, measure(group, dir));
        continue;
      }
      for (let copy = 0; copy < HTTP_PROCESSES; copy++) {
        const one = measure(group, dir, copy);
        httpRatios.push(median(one['http-wrap']!) / median(one['http-bare']!));
        for (const [op, xs] of Object.entries(one)) (runs[op] ??= []).push(...xs);
      }
    }
    const cost = Object.fromEntries(Object.entries(runs).map(([op, xs]) => [op, median(xs)]));
    const c = (op: string) => cost[op] ?? Number.NaN;
    // The SQL workloads build a fresh statement per operation: that string costs the same in
    // every one of them, and is taken out.
    const sql = (op: string) => c(op) - c('sql-statement-only');
    const row = (measure: string, op: string, value: number, baseline?: [string, number]): Row | undefined => {
      // A group left out (HAVOC_CALLGRIND_GROUPS) leaves its rows out.
      if (!runs[op] || Number.isNaN(value) || (baseline && Number.isNaN(baseline[1]))) return undefined;
      const xs = runs[op].map((x) => (op.startsWith('sql-') && op !== 'sql-statement-only' ? x - c('sql-statement-only') : x));
      const ratio = op === 'http-wrap' ? median(httpRatios) : baseline && (baseline === js ? baseline[1] / value : value / baseline[1]);
      return {
        measure,
        'instructions/op': Math.round(value),
        spread: `${Math.round(Math.min(...xs))}..${Math.round(Math.max(...xs))}`,
        'ratio to baseline': ratio ? Number(ratio.toFixed(3)) : '',
        baseline: baseline?.[0] ?? '',
      };
    };
    const floor: [string, number] = ['napi-rs floor', c('napi-floor')];
    // For SQL the baseline is the slower one: the ratio is a speed-up (JS port ÷ this).
    const js: [string, number] = ['JS port: speed-up, JS ÷ this', sql('sql-js-unique')];
    const rows = [
      row('empty N-API call (no arguments)', 'napi-empty', c('napi-empty')),
      row('napi-rs floor: decide arguments, does nothing', 'napi-floor', c('napi-floor'), ['empty N-API call', c('napi-empty')]),
      row('decide, protocol with nothing that can fire (sql; 100 http policies)', 'decide-idle', c('decide-idle'), floor),
      row("an interceptor's decision, protocol with nothing that can fire (contract.ts)", 'interceptor-idle', c('interceptor-idle'), floor),
      row('decide, 100 http policies, no match', 'decide-miss', c('decide-miss'), floor),
      row('decide, match, chances 0', 'decide-match', c('decide-match'), floor),
      row('decide, match, error fires', 'decide-fire', c('decide-fire'), floor),
      row('wrapHandler around a no-op, path no policy names (no parser)', 'wrap-skip', c('wrap-skip')),
      row('HTTP request, bare node:http', 'http-bare', c('http-bare')),
      row('HTTP request, wrapHandler, 100 non-matching policies', 'http-wrap', c('http-wrap'), [
        `the same request bare, same process (median of ${httpRatios.length})`,
        c('http-bare'),
      ]),
      row('JS port of normalizeSql, unique ~100 B', 'sql-js-unique', sql('sql-js-unique')),
      row('normalizeSql, addon alone, unique ~100 B', 'sql-addon-unique', sql('sql-addon-unique'), js),
      row('normalizeSql, exported (cache), unique ~100 B', 'sql-exported-unique', sql('sql-exported-unique'), js),
      row('normalizeSql, exported (cache), 95% repeated', 'sql-exported-repeated', sql('sql-exported-repeated'), js),
    ].filter((r) => r !== undefined);
    console.table(rows);
    if (httpRatios.length > 0) {
      console.log(`http-wrap ÷ http-bare in each process: ${httpRatios.map((r) => r.toFixed(3)).join(', ')}`);
    }
    for (const [op, xs] of Object.entries(addonShare)) {
      console.log(`${op}: instructions inside the addon per run of ${N.decide}: ${xs.join(', ')} (0: no call into it)`);
    }
    const out = path.join(__dirname, '..', '..', 'bench-results');
    mkdirSync(out, { recursive: true });
    writeFileSync(
      path.join(out, 'callgrind.json'),
      `${JSON.stringify({ valgrind: version, node: process.version, rounds: ROUNDS, n: N, runs, rows, addonShare, httpRatios }, null, 2)}\n`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main();
