/**
 * The `havoc` command line (bin/havoc.js runs `main`). One file per command group:
 * config-commands (validate, plan), control-commands (apply, diff, remove, halt, resume,
 * rollback, renew, status, attack), fleet-commands (fleet apply, renew, halt, status over Redis),
 * run (scenarios with an SLO probe) and demo; client.ts
 * reaches the control plane, output.ts holds exit codes, colour and tables.
 */
import { Command, CommanderError } from 'commander';

import { serviceOptions } from './client.js';
import { registerConfigCommands } from './config-commands.js';
import { registerControlCommands } from './control-commands.js';
import { registerDemo } from './demo.js';
import { registerFleetCommands } from './fleet-commands.js';
import { CliError, EXIT, colourEnabled } from './output.js';
import { registerRun } from './run.js';

// oxlint-disable-next-line typescript/no-require-imports
const { version } = require('../../package.json') as { version: string };

export function program(): Command {
  const root = new Command('havoc')
    .description('chaos experiments against a service running havoc: validate, plan, apply, attack, run scenarios guarded by an SLO')
    .version(version, '-V, --version')
    .showHelpAfterError('(add --help for usage)')
    .configureOutput({ outputError: (text, write) => write(colourEnabled(process.stderr) ? `\u001b[31m${text}\u001b[0m` : text) })
    .addHelpText(
      'after',
      `
Environment: HAVOC_URL (control plane, default http://127.0.0.1:9090), HAVOC_TOKEN (its token,
sent as a header), HAVOC_FLEET_REDIS and HAVOC_FLEET_SECRET (havoc fleet), NO_COLOR (no colour).
Exit codes: 0 ok; 1 invalid input, usage error, or control plane unreachable or refusing;
2 an SLO breached or a plan over its risk limit.

Example:
  $ havoc demo          # a service, its control plane and a guarded scenario, no setup`,
    );
  serviceOptions(root);
  registerConfigCommands(root);
  registerControlCommands(root);
  registerFleetCommands(root);
  registerRun(root);
  registerDemo(root);
  root.commands.forEach((command) => command.showHelpAfterError('(add --help for usage)'));
  return root.exitOverride();
}

/** Runs the CLI; resolves with the exit code (also set on `process.exitCode`). */
export async function main(argv: readonly string[]): Promise<number> {
  try {
    await program().parseAsync(argv as string[]);
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version are "errors" with code 0; usage errors were printed already.
      process.exitCode = error.exitCode === 0 ? EXIT.ok : EXIT.input;
    } else if (error instanceof CliError) {
      process.stderr.write(error.listing ? `${error.message}\n` : `havoc: ${error.message}\n`);
      process.exitCode = error.exitCode;
    } else {
      process.stderr.write(`havoc: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = EXIT.input;
    }
  }
  return Number(process.exitCode ?? 0);
}
