/** `havoc validate` and `havoc plan`: local commands, no control plane needed. */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';

import { loadConfig } from '../config.js';
import { ConfigError, type ConfigIssue } from '../errors.js';
import { analyze, type RiskReport } from '../guard.js';
import type { Config } from '../types.js';
import { CliError, EXIT, formatIssue, line, paint, printJson, table } from './output.js';

/** A config file loaded, or every issue it has, placed at `file:line:col`. */
export function readConfig(file: string): { config: Config; text: string; format: 'json' | 'yaml' } {
  const config = loadOrThrow(file);
  return { config, text: readFileSync(file, 'utf8'), format: extname(file).toLowerCase() === '.json' ? 'json' : 'yaml' };
}

function loadOrThrow(file: string): Config {
  try {
    return loadConfig(file);
  } catch (error) {
    if (error instanceof ConfigError)
      throw new CliError(error.issues.map((issue) => formatIssue(issue, file)).join('\n'), EXIT.input, true);
    throw error;
  }
}

function issuesOf(file: string): ConfigIssue[] {
  try {
    loadConfig(file);
    return [];
  } catch (error) {
    if (error instanceof ConfigError) return error.issues;
    return [{ path: '', message: (error as Error).message }];
  }
}

export function registerConfigCommands(program: Command): void {
  program
    .command('validate')
    .description('check config files; every problem at once, as file:line:col: path: message')
    .argument('<file...>', 'YAML or JSON config files (.json is read as JSON)')
    .option('--json', 'print [{ file, valid, issues }] as JSON')
    .addHelpText('after', '\nExample:\n  $ havoc validate havoc.yaml chaos/*.yaml')
    .action((files: string[], options: { json?: boolean }) => {
      const results = files.map((file) => ({ file, issues: issuesOf(file) }));
      if (options.json) {
        printJson(results.map(({ file, issues }) => ({ file, valid: issues.length === 0, issues })));
      } else {
        for (const { file, issues } of results) {
          if (issues.length === 0) line(`${file}: ${paint('green', 'ok')}`);
          for (const issue of issues) process.stderr.write(`${formatIssue(issue, file)}\n`);
        }
      }
      if (results.some(({ issues }) => issues.length > 0)) process.exitCode = EXIT.input;
    });

  program
    .command('plan')
    .description("the blast-radius guard's report on a config: score, status, risk per policy, findings; nothing is applied")
    .argument('<file>', 'YAML or JSON config file')
    .option('--max-risk <score>', 'exit 2 when the score (0-100) is above this', parseScore)
    .option('--json', 'print the report as JSON')
    .addHelpText('after', '\nExamples:\n  $ havoc plan chaos.yaml\n  $ havoc plan chaos.yaml --max-risk 50   # in CI: exit 2 above 50')
    .action((file: string, options: { maxRisk?: number; json?: boolean }) => {
      const report = analyze(readConfig(file).config);
      const over = options.maxRisk !== undefined && report.score > options.maxRisk;
      if (options.json) printJson({ file, ...report, maxRisk: options.maxRisk ?? null, overLimit: over });
      else printPlan(file, report, options.maxRisk);
      if (over) process.exitCode = EXIT.breach;
    });
}

const STATUS_COLOUR = { SAFE: 'green', ELEVATED: 'yellow', HIGH: 'red', CRITICAL: 'red' } as const;

function printPlan(file: string, report: RiskReport, maxRisk: number | undefined): void {
  line(`${file}: score ${report.score}/100 ${paint(STATUS_COLOUR[report.status], report.status)}`);
  if (report.policies.length > 0) {
    line();
    const rows = report.policies.map((p) => [p.name, p.scope.toFixed(2), p.severity.toFixed(2), p.risk.toFixed(2)]);
    line(table(['POLICY', 'SCOPE', 'SEVERITY', 'RISK'], rows));
  }
  if (report.issues.length > 0) {
    line();
    line('findings:');
    for (const issue of report.issues) line(`  - ${issue}`);
  }
  if (maxRisk !== undefined) {
    line();
    line(
      report.score > maxRisk
        ? paint('red', `over the limit: ${report.score} > ${maxRisk}`)
        : `within the limit: ${report.score} <= ${maxRisk}`,
    );
  }
}

function parseScore(value: string): number {
  const score = Number(value);
  if (value.trim() === '' || !Number.isFinite(score) || score < 0 || score > 100) {
    throw new InvalidArgumentError('a score from 0 to 100');
  }
  return score;
}
