/** Probe statistics of `havoc run` (error rate, percentiles, Apdex) and its report as a table, JSON or Markdown. */
import { percent, showMs, table } from './output.js';

export interface ProbeResult {
  /** When the probe started (ms, monotonic). */
  at: number;
  ms: number;
  /** Why the probe counts as an error (status >= 500, timeout, network), or null. */
  error: string | null;
  step: number;
}

export interface Stats {
  probes: number;
  errors: number;
  errorRate: number;
  p50Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
  apdex: number | null;
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Apdex: satisfied (≤ T) count 1, tolerating (≤ 4T) ½, errors and slower 0. */
export function stats(results: readonly ProbeResult[], apdexTMs: number): Stats {
  const sorted = results.map((r) => r.ms).sort((a, b) => a - b);
  const errors = results.filter((r) => r.error !== null).length;
  let score = 0;
  for (const r of results) {
    if (r.error !== null) continue;
    if (r.ms <= apdexTMs) score += 1;
    else if (r.ms <= 4 * apdexTMs) score += 0.5;
  }
  const n = results.length;
  return {
    probes: n,
    errors,
    errorRate: n === 0 ? 0 : errors / n,
    p50Ms: percentile(sorted, 50),
    p95Ms: percentile(sorted, 95),
    p99Ms: percentile(sorted, 99),
    apdex: n === 0 ? null : score / n,
  };
}

export interface Breach {
  step: string;
  objective: 'max_error_rate' | 'max_p99' | 'min_apdex';
  value: number;
  limit: number;
  /** One sentence: which step, which objective, by how much. */
  message: string;
}

export interface RunReport {
  scenario: string;
  result: 'passed' | 'breached';
  startedAt: string;
  breach: Breach | null;
  slo: Record<string, number | undefined>;
  steps: ({ name: string; durationMs: number; policies: string[]; completed: boolean } & Stats)[];
}

const rows = (report: RunReport): string[][] =>
  report.steps.map((s) => [
    s.name,
    s.policies.length === 0 ? '-' : s.policies.join(', '),
    String(s.probes),
    percent(s.errorRate),
    showMs(s.p50Ms),
    showMs(s.p95Ms),
    showMs(s.p99Ms),
    s.apdex === null ? '-' : s.apdex.toFixed(2),
    s.completed ? 'ok' : report.breach?.step === s.name ? 'BREACH' : 'skipped',
  ]);
const HEADER = ['STEP', 'POLICIES', 'PROBES', 'ERRORS', 'P50', 'P95', 'P99', 'APDEX', 'RESULT'];

export function reportTable(report: RunReport): string {
  return table(HEADER, rows(report));
}

export function reportMarkdown(report: RunReport): string {
  const escape = (cell: string) => cell.replace(/\|/g, '\\|');
  const out = [
    `# havoc run: ${escape(report.scenario)}`,
    '',
    `- result: **${report.result}**${report.breach ? ` (${escape(report.breach.message)})` : ''}`,
    `- started: ${report.startedAt}`,
    `- SLO: ${Object.entries(report.slo)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
    '',
    `| ${HEADER.join(' | ')} |`,
    `|${HEADER.map(() => '---').join('|')}|`,
    ...rows(report).map((row) => `| ${row.map(escape).join(' | ')} |`),
    '',
  ];
  return out.join('\n');
}
