/**
 * Commands against a running control plane: apply, diff, remove, halt, resume, rollback,
 * renew, status [--watch] and attack (a leased apply, renewed while it runs, removed at the end,
 * on Ctrl-C and on SIGTERM; a SIGKILLed CLI leaves a lease that runs out in the service).
 */
import { InvalidArgumentError, type Command } from 'commander';

import { parseDuration } from '../duration.js';
import native = require('../native.js');
import { policyHash } from '../hash.js';
import type { Policy } from '../types.js';
import { Client, faultCounts, withService, type PlaneState, type ServiceOptions } from './client.js';
import { readConfig } from './config-commands.js';
import { CliError, EXIT, line, paint, printJson, showMs, table } from './output.js';

interface Common extends ServiceOptions {
  json?: boolean;
}

/** A `--ttl` checked here (Go duration, 1ms to 24h) and sent as written. */
export function parseTtl(value: string): string {
  let ms: number;
  try {
    ms = parseDuration(value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
  if (!(ms >= 1 && ms <= native.MAX_LEASE_MS)) throw new InvalidArgumentError('between 1ms and 24h');
  return value;
}

function example(...lines: string[]): string {
  return `\nExample${lines.length > 1 ? 's' : ''}:\n${lines.map((text) => `  $ ${text}`).join('\n')}`;
}

export function registerControlCommands(program: Command): void {
  withService(program.command('apply'))
    .description('replace the running `api` layer with a config file (validated here first)')
    .argument('<file>', 'YAML or JSON config file')
    .option('--ttl <duration>', 'lease: the layer reverts by itself unless renewed (e.g. 10m)', parseTtl)
    .option('--json', 'print the new state as JSON')
    .addHelpText('after', example('havoc apply chaos.yaml --ttl 10m', 'HAVOC_URL=http://127.0.0.1:9090 havoc apply chaos.json'))
    .action(async (file: string, options: Common & { ttl?: string }) => {
      const { text, format, config } = readConfig(file);
      const state = await new Client(options).apply(text, format, options.ttl);
      if (options.json) return printJson(state);
      const lease = options.ttl === undefined ? '' : `, lease ${options.ttl}`;
      line(
        `applied ${config.policies.length} ${config.policies.length === 1 ? 'policy' : 'policies'} from ${file} as layer api (version ${state.version}${lease})`,
      );
    });

  withService(program.command('diff'))
    .description('policies a config file would add, remove or change against the running `api` layer')
    .argument('<file>', 'YAML or JSON config file')
    .option('--json', 'print { added, removed, changed, unchanged, unknown } as JSON (unknown: in both while halted, not compared)')
    .addHelpText('after', example('havoc diff chaos.yaml'))
    .action(async (file: string, options: Common) => {
      const { config } = readConfig(file);
      const state = await new Client(options).state();
      const diff = diffPolicies(runningApi(state), config.policies);
      if (options.json) return printJson(diff);
      for (const name of diff.added) line(paint('green', `+ ${name}`));
      for (const name of diff.removed) line(paint('red', `- ${name}`));
      for (const name of diff.changed) line(paint('yellow', `~ ${name}`));
      for (const name of diff.unknown) line(`? ${name}`);
      if (diff.unknown.length > 0) line(paint('dim', 'the set is halted: policies marked ? are in both, their contents not compared'));
      if (diff.added.length + diff.removed.length + diff.changed.length + diff.unknown.length === 0)
        line(`no changes (${diff.unchanged.length} unchanged)`);
      else
        line(
          `${diff.added.length} added, ${diff.removed.length} removed, ${diff.changed.length} changed, ${diff.unchanged.length} unchanged` +
            (diff.unknown.length > 0 ? `, ${diff.unknown.length} not compared` : ''),
        );
    });

  const simple = (
    name: string,
    description: string,
    act: (client: Client) => Promise<PlaneState & { removed?: boolean }>,
    done: (state: PlaneState & { removed?: boolean }) => string,
  ) =>
    withService(program.command(name))
      .description(description)
      .option('--json', 'print the new state as JSON')
      .addHelpText('after', example(`havoc ${name}`))
      .action(async (options: Common) => {
        const state = await act(new Client(options));
        if (options.json) printJson(state);
        else line(done(state));
      });
  simple(
    'remove',
    'remove the `api` layer',
    (c) => c.remove(),
    (s) => (s.removed ? `removed layer api (version ${s.version})` : 'no api layer to remove'),
  );
  simple(
    'halt',
    'turn every fault of every layer off until resume, an update or a rollback',
    (c) => c.request('POST', '/havoc/halt') as Promise<PlaneState>,
    (s) => `halted (version ${s.version})`,
  );
  simple(
    'resume',
    'turn faults back on after a halt',
    (c) => c.request('POST', '/havoc/resume') as Promise<PlaneState>,
    (s) => `resumed (version ${s.version})`,
  );
  simple(
    'rollback',
    'go back to the previous effective policy set',
    (c) => c.request('POST', '/havoc/rollback') as Promise<PlaneState>,
    (s) => `rolled back: now version ${s.version}, ${s.policies.length} ${s.policies.length === 1 ? 'policy' : 'policies'} in force`,
  );

  withService(program.command('renew'))
    .description("renew the `api` layer's lease (default: its own TTL)")
    .option('--ttl <duration>', 'new TTL from now (e.g. 5m)', parseTtl)
    .option('--json', 'print { layer, remainingMs } as JSON')
    .addHelpText('after', example('havoc renew --ttl 5m'))
    .action(async (options: Common & { ttl?: string }) => {
      const renewed = await new Client(options).renew(options.ttl);
      if (options.json) printJson(renewed);
      else line(`lease of layer api renewed: ${showMs(renewed.remainingMs)} left`);
    });

  withService(program.command('status'))
    .description('layers, leases with time left, halted, history and live fault counts')
    .option('--watch', 'redraw until Ctrl-C')
    .option('--interval <duration>', 'redraw interval with --watch', parseTtl, '1s')
    .option('--json', 'print { state, faults } as JSON (one document per redraw with --watch)')
    .addHelpText('after', example('havoc status', 'havoc status --watch --interval 2s'))
    .action(async (options: Common & { watch?: boolean; interval: string }) => {
      const client = new Client(options);
      for (;;) {
        const [state, metrics] = await Promise.all([client.state(), client.metrics()]);
        const faults = faultCounts(metrics);
        if (options.json) printJson({ state, faults });
        else {
          if (options.watch && process.stdout.isTTY) process.stdout.write('\u001b[H\u001b[2J');
          printStatus(client, state, faults);
        }
        if (!options.watch) return;
        await new Promise((resolve) => setTimeout(resolve, parseDuration(options.interval)));
      }
    });

  withService(program.command('attack'))
    .description('apply a config with a lease, renew it while running, remove it at the end, on Ctrl-C and on SIGTERM')
    .argument('<file>', 'YAML or JSON config file')
    .requiredOption('--ttl <duration>', 'lease (e.g. 2m): if this CLI dies, the service reverts by itself after it', parseTtl)
    .option('--duration <duration>', 'end the attack after this long (default: run until Ctrl-C)', parseTtl)
    .addHelpText('after', example('havoc attack chaos.yaml --ttl 2m', 'havoc attack chaos.yaml --ttl 30s --duration 5m'))
    .action(async (file: string, options: ServiceOptions & { ttl: string; duration?: string }) => attack(file, options));
}

/**
 * The running `api` layer's policies: the effective set holds every layer's, by name. While the
 * set is halted the control plane shows the layers' policy names but no effective policies:
 * those are compared by name only (`null`).
 */
function runningApi(state: PlaneState): Map<string, Policy | null> {
  const names = state.layers.find((layer) => layer.name === 'api')?.policies ?? [];
  const byName = new Map((state.policies as unknown as Policy[]).map((policy) => [policy.name, policy]));
  return new Map(names.map((name) => [name, byName.get(name) ?? null]));
}

export function diffPolicies(
  running: Map<string, Policy | null>,
  wanted: Policy[],
): { added: string[]; removed: string[]; changed: string[]; unchanged: string[]; unknown: string[] } {
  const before = new Map([...running].map(([name, policy]) => [name, policy === null ? null : policyHash(policy)]));
  const diff = {
    added: [] as string[],
    removed: [] as string[],
    changed: [] as string[],
    unchanged: [] as string[],
    unknown: [] as string[],
  };
  for (const policy of wanted) {
    const old = before.get(policy.name);
    if (old === undefined) diff.added.push(policy.name);
    else if (old === null) diff.unknown.push(policy.name);
    else if (old !== policyHash(policy)) diff.changed.push(policy.name);
    else diff.unchanged.push(policy.name);
  }
  const after = new Set(wanted.map((policy) => policy.name));
  for (const name of before.keys()) if (!after.has(name)) diff.removed.push(name);
  return diff;
}

function printStatus(client: Client, state: PlaneState, faults: ReturnType<typeof faultCounts>): void {
  line(
    `${client.where}  version ${state.version}  ${state.halted ? paint('red', 'HALTED') : paint('green', 'active')}${state.warmupRemainingMs > 0 ? `  warmup ${showMs(state.warmupRemainingMs)} left` : ''}`,
  );
  line();
  const layers = state.layers.map((layer) => [
    layer.name,
    String(layer.policies.length),
    layer.policies.join(', ') || '-',
    layer.lease ? `${showMs(layer.lease.remainingMs)} of ${showMs(layer.lease.ttlMs)}` : '-',
  ]);
  line(layers.length === 0 ? 'no layers' : table(['LAYER', 'POLICIES', 'NAMES', 'LEASE LEFT'], layers));
  line();
  const counted = faults.filter((f) => f.count > 0);
  line(
    counted.length === 0
      ? 'no faults injected yet'
      : table(
          ['POLICY', 'PROTOCOL', 'FAULT', 'COUNT'],
          counted.map((f) => [f.policy, f.protocol, f.fault, String(f.count)]),
        ),
  );
  line();
  const history = state.history
    .slice(-5)
    .reverse()
    .map((entry) => [String(entry.version), entry.cause, String(entry.policies)]);
  line(history.length === 0 ? 'no history' : table(['VERSION', 'CAUSE', 'POLICIES'], history));
}

async function attack(file: string, options: ServiceOptions & { ttl: string; duration?: string }): Promise<void> {
  const { text, format, config } = readConfig(file);
  const client = new Client(options);
  const ttlMs = parseDuration(options.ttl);
  // Signal handlers first: a signal that comes while the layer is being applied still removes it.
  let finish: (reason: string) => void = () => {};
  const ended = new Promise<string>((resolve) => (finish = resolve));
  const onSignal = (signal: NodeJS.Signals) => finish(signal);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  await client.apply(text, format, options.ttl);
  line(
    `attack: ${config.policies.length} policies from ${file} applied, lease ${options.ttl}, renewed every ${showMs(ttlMs / 3)}; Ctrl-C ends it`,
  );
  const renewal = setInterval(
    () => {
      client.renew(options.ttl).catch((error: Error) => finish(`renew failed: ${error.message}`));
    },
    Math.max(1, ttlMs / 3),
  );
  const timer = options.duration === undefined ? undefined : setTimeout(() => finish('done'), parseDuration(options.duration));
  const reason = await ended;
  clearInterval(renewal);
  if (timer) clearTimeout(timer);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  await client.remove();
  line(`attack ended (${reason}): layer api removed`);
  if (reason.startsWith('renew failed')) throw new CliError(`attack: ${reason}; the layer was removed`, EXIT.input);
}
