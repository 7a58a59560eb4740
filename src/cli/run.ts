/**
 * `havoc run`: an experiment guarded by an SLO probe. The probe must be healthy before any
 * chaos (else exit 1, nothing applied); each step's policies go in as a leased `api` layer,
 * renewed while the step runs (a killed CLI reverts); on a breach the chaos is removed at once
 * and the run exits 2 naming the step and the objective.
 */
import { writeFileSync } from 'node:fs';
import { extname } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Command } from 'commander';

import { Client, withService, type ServiceOptions } from './client.js';
import { CliError, EXIT, line, paint, percent, printJson, showMs } from './output.js';
import { reportMarkdown, reportTable, stats, type Breach, type ProbeResult, type RunReport } from './report.js';
import { loadScenario, type Scenario, type Slo } from './scenario.js';

/** A step's lease: a killed CLI leaves chaos running for at most this long. */
const LEASE = '5s';
const RENEW_EVERY_MS = 1500;
/** Objectives are checked once the window holds this many probes. */
export const MIN_WINDOW_PROBES = 5;
const PREFLIGHT_PROBES = 3;

export interface RunOptions {
  /** Live progress: a redrawn line (TTY) or a line per step. */
  progress?: (text: string, final: boolean) => void;
  /** Label of the scenario in the report. */
  name: string;
  signal?: AbortSignal;
}

/** One GET: status >= 500, a timeout or a network error is an error. */
async function probe(url: string, timeoutMs: number): Promise<{ ms: number; error: string | null }> {
  const start = performance.now();
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { 'user-agent': 'havoc-probe' } });
    await response.arrayBuffer();
    return { ms: performance.now() - start, error: response.status >= 500 ? `status ${response.status}` : null };
  } catch (error) {
    const name = (error as Error).name;
    if (name === 'TimeoutError' || name === 'AbortError') return { ms: timeoutMs, error: `timeout after ${showMs(timeoutMs)}` };
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    return { ms: performance.now() - start, error: `network error (${cause?.code ?? cause?.message ?? (error as Error).message})` };
  }
}

/** The first objective the window breaks, if any. */
export function check(slo: Slo, window: readonly ProbeResult[], step: string): Breach | undefined {
  if (window.length < MIN_WINDOW_PROBES) return undefined;
  const s = stats(window, slo.apdexTMs);
  const over = `over the last ${showMs(slo.windowMs)} (${s.probes} probes)`;
  if (slo.maxErrorRate !== undefined && s.errorRate > slo.maxErrorRate)
    return {
      step,
      objective: 'max_error_rate',
      value: s.errorRate,
      limit: slo.maxErrorRate,
      message: `step "${step}" broke max_error_rate: ${percent(s.errorRate)} > ${percent(slo.maxErrorRate)} ${over}`,
    };
  if (slo.maxP99Ms !== undefined && s.p99Ms !== null && s.p99Ms > slo.maxP99Ms)
    return {
      step,
      objective: 'max_p99',
      value: s.p99Ms,
      limit: slo.maxP99Ms,
      message: `step "${step}" broke max_p99: ${showMs(s.p99Ms)} > ${showMs(slo.maxP99Ms)} ${over}`,
    };
  if (slo.minApdex !== undefined && s.apdex !== null && s.apdex < slo.minApdex)
    return {
      step,
      objective: 'min_apdex',
      value: s.apdex,
      limit: slo.minApdex,
      message: `step "${step}" broke min_apdex: ${s.apdex.toFixed(2)} < ${slo.minApdex} ${over}`,
    };
  return undefined;
}

export async function runScenario(scenario: Scenario, client: Client, options: RunOptions): Promise<RunReport> {
  const progress = options.progress ?? (() => {});
  const { probe: target, slo } = scenario;
  await client.state(); // unreachable or refusing: exit 1 before anything
  for (let i = 0; i < PREFLIGHT_PROBES; i += 1) {
    if (i > 0) await new Promise((resolve) => setTimeout(resolve, target.intervalMs));
    const result = await probe(target.url, target.timeoutMs);
    if (result.error !== null)
      throw new CliError(`pre-flight: the probe ${target.url} is not healthy (${result.error}); nothing was applied`);
  }
  if (options.signal?.aborted) throw new CliError('interrupted before any chaos; nothing was applied');
  const startedAt = new Date().toISOString();
  const results: ProbeResult[] = [];
  const completed = new Set<number>();
  let applied = false;
  let breach: Breach | undefined;
  let stepIndex = 0;
  let stepStart = performance.now();
  let stop: () => void = () => {};

  const onProbe = (result: ProbeResult): void => {
    if (breach !== undefined) return;
    results.push(result);
    const now = performance.now();
    const window = results.filter((r) => r.at >= now - slo.windowMs);
    const step = scenario.steps[result.step]!;
    breach = check(slo, window, step.name);
    if (breach !== undefined) return stop();
    const s = stats(window, slo.apdexTMs);
    progress(
      `[${stepIndex + 1}/${scenario.steps.length} ${step.name}] ${showMs(now - stepStart)}/${showMs(step.durationMs)}  probes ${results.length}  errors ${percent(s.errorRate)}  p99 ${showMs(s.p99Ms)}  apdex ${s.apdex?.toFixed(2) ?? '-'}`,
      false,
    );
  };

  const abort = () => stop();
  options.signal?.addEventListener('abort', abort);
  const probing = setInterval(() => {
    const at = performance.now();
    const step = stepIndex;
    void probe(target.url, target.timeoutMs).then(({ ms, error }) => onProbe({ at, ms, error, step }));
  }, target.intervalMs);
  try {
    for (; stepIndex < scenario.steps.length; stepIndex += 1) {
      // No new chaos after a breach or an interruption.
      if ((breach as Breach | undefined) !== undefined || options.signal?.aborted) break;
      const step = scenario.steps[stepIndex]!;
      stepStart = performance.now();
      if (step.chaos) {
        await client.apply(step.chaos.text, step.chaos.format, LEASE);
        applied = true;
      } else if (applied) {
        await client.remove();
        applied = false;
      }
      progress(
        `step ${stepIndex + 1}/${scenario.steps.length} ${step.name}: ${step.chaos ? step.chaos.policies.join(', ') : 'no chaos'} for ${showMs(step.durationMs)}`,
        true,
      );
      // A failed renewal is shown, not fatal: the next one may pass, and a lease that runs out only ends the chaos early.
      const renewal = step.chaos
        ? setInterval(() => {
            client.renew(LEASE).catch((error: Error) => progress(paint('yellow', `warning: lease renewal failed: ${error.message}`), true));
          }, RENEW_EVERY_MS)
        : undefined;
      const ended = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(true), step.durationMs);
        stop = () => {
          clearTimeout(timer);
          resolve(false);
        };
        // A breach or an interruption while the step's layer was being applied ends it at once.
        if ((breach as Breach | undefined) !== undefined || options.signal?.aborted) stop();
      });
      if (renewal) clearInterval(renewal);
      if (!ended) break;
      completed.add(stepIndex);
    }
  } finally {
    clearInterval(probing);
    options.signal?.removeEventListener('abort', abort);
    // On a breach, an interruption or an error: the chaos goes first, before any report.
    if (applied) await client.remove();
  }
  if (breach === undefined && options.signal?.aborted) throw new CliError('interrupted: the chaos was removed');
  const b = breach as Breach | undefined;
  if (b) progress(paint('red', `SLO breached: ${b.message}; the chaos was removed`), true);
  else progress(`done: ${scenario.steps.length} steps, ${results.length} probes; the chaos was removed`, true);
  return {
    scenario: options.name,
    result: b ? 'breached' : 'passed',
    startedAt,
    breach: b ?? null,
    slo: {
      window_ms: slo.windowMs,
      max_error_rate: slo.maxErrorRate,
      max_p99_ms: slo.maxP99Ms,
      min_apdex: slo.minApdex,
      apdex_t_ms: slo.apdexTMs,
    },
    steps: scenario.steps.map((step, index) => ({
      name: step.name,
      durationMs: step.durationMs,
      policies: step.chaos?.policies ?? [],
      completed: completed.has(index),
      ...stats(
        results.filter((r) => r.step === index),
        slo.apdexTMs,
      ),
    })),
  };
}

/** A progress writer: a redrawn line on a TTY, plain lines otherwise (to stderr, so stdout stays the report). */
export function progressWriter(): (text: string, final: boolean) => void {
  const tty = process.stderr.isTTY === true;
  return (text, final) => {
    if (tty) process.stderr.write(`\r\u001b[K${text}${final ? '\n' : ''}`);
    else if (final) process.stderr.write(`${text}\n`);
  };
}

/** Writes the report (`.md` as Markdown, anything else as JSON) and prints the table or the JSON. */
export function finish(report: RunReport, options: { report?: string; json?: boolean }): void {
  if (options.report !== undefined) {
    const markdown = extname(options.report).toLowerCase() === '.md';
    writeFileSync(options.report, markdown ? reportMarkdown(report) : `${JSON.stringify(report, null, 2)}\n`);
  }
  if (options.json) printJson(report);
  else {
    line(reportTable(report));
    line();
    line(report.breach ? paint('red', `BREACHED: ${report.breach.message}`) : paint('green', 'passed: every objective held'));
    if (options.report !== undefined) line(`report: ${options.report}`);
  }
  if (report.breach) process.exitCode = EXIT.breach;
}

export function registerRun(program: Command): void {
  withService(program.command('run'))
    .description('run a scenario: steps of chaos guarded by an SLO probe; on a breach the chaos is removed and the run exits 2')
    .argument('<scenario>', 'scenario YAML: version, probe, slo, steps')
    .option('--report <file>', 'write the report: .md as Markdown, else JSON')
    .option('--json', 'print the report as JSON')
    .addHelpText(
      'after',
      `
Scenario:
  version: 1
  probe: { url: http://127.0.0.1:3000/health, interval: 200ms, timeout: 2s }
  slo: { window: 5s, max_error_rate: 0.05, max_p99: 800ms, min_apdex: 0.85, apdex_t: 300ms }
  steps:
    - { name: baseline, duration: 5s }
    - { name: slow-db, duration: 20s, config: ./slow.yaml }   # or policies: [...] inline

Exit codes: 0 every objective held; 1 bad scenario, unhealthy probe before any chaos, or control
plane unreachable; 2 an objective broke (the chaos is removed at once).

Example:
  $ havoc run scenario.yaml --report out.md`,
    )
    .action(async (file: string, options: ServiceOptions & { report?: string; json?: boolean }) => {
      const scenario = loadScenario(file);
      const client = new Client(options);
      const controller = new AbortController();
      const interrupt = () => controller.abort();
      process.once('SIGINT', interrupt);
      process.once('SIGTERM', interrupt);
      try {
        finish(await runScenario(scenario, client, { name: file, progress: progressWriter(), signal: controller.signal }), options);
      } finally {
        process.off('SIGINT', interrupt);
        process.off('SIGTERM', interrupt);
      }
    });
}
