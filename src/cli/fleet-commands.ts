/**
 * `havoc fleet apply | renew | halt | status`: fleet control straight over Redis, no control
 * plane involved. `halt` publishes "no fleet set": every member drops its `fleet` layer (its
 * own file and api layers stay), which ends fleet-wide chaos everywhere at once.
 */
import type { Command } from 'commander';

import { parseDuration } from '../duration.js';
import { FleetError, FleetRejectionError } from '../errors.js';
import { fleetMembers, fleetSet, publishFleet, renewFleet } from '../fleet/publish.js';
import { DEFAULT_CHANNEL } from '../fleet/record.js';
import { readConfig } from './config-commands.js';
import { parseTtl } from './control-commands.js';
import { CliError, line, paint, printJson, showMs, table } from './output.js';

interface FleetOptions {
  redis?: string;
  channel: string;
  secret?: string;
  json?: boolean;
}

function withFleet(command: Command): Command {
  return command
    .option('--redis <url>', 'Redis URL (env HAVOC_FLEET_REDIS)')
    .option('--channel <name>', 'fleet channel', DEFAULT_CHANNEL)
    .option('--secret <secret>', 'signing secret (env HAVOC_FLEET_SECRET; prefer the variable)');
}

function redisOf(options: FleetOptions): string {
  const url = options.redis ?? process.env.HAVOC_FLEET_REDIS;
  if (url === undefined || url === '') throw new CliError('no Redis given: pass --redis redis://host:6379 or set HAVOC_FLEET_REDIS');
  return url;
}

function secretOf(options: FleetOptions): string | undefined {
  const secret = options.secret ?? process.env.HAVOC_FLEET_SECRET;
  return secret === '' ? undefined : secret;
}

/**
 * Runs a fleet call; its `FleetError` (unreachable Redis, nothing to renew, ...) or
 * `FleetRejectionError` (the key holds no fleet record) becomes the CLI's one-line error.
 */
async function fleetCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof FleetError || error instanceof FleetRejectionError) throw new CliError(error.message);
    throw error;
  }
}

const ttlMs = (ttl: string | undefined): number | undefined => (ttl === undefined ? undefined : Math.round(parseDuration(ttl)));

function example(...lines: string[]): string {
  return `\nExample${lines.length > 1 ? 's' : ''}:\n${lines.map((text) => `  $ ${text}`).join('\n')}`;
}

export function registerFleetCommands(program: Command): void {
  const fleet = program
    .command('fleet')
    .description('fleet control over Redis: every service that joined the channel (joinFleet) follows what is published')
    .addHelpText(
      'after',
      example(
        'havoc fleet apply chaos.yaml --redis redis://redis:6379 --ttl 10m',
        'havoc fleet status --redis redis://redis:6379',
        'havoc fleet halt --redis redis://redis:6379',
      ),
    );

  withFleet(fleet.command('apply'))
    .description("publish a config file as every member's `fleet` layer (validated here first)")
    .argument('<file>', 'YAML or JSON config file')
    .option('--ttl <duration>', 'fleet lease: every member drops the set unless renewed (havoc fleet renew) in time', parseTtl)
    .option('--json', 'print { channel, version } as JSON')
    .addHelpText('after', example('havoc fleet apply chaos.yaml --redis redis://redis:6379 --ttl 10m'))
    .action(async (file: string, options: FleetOptions & { ttl?: string }) => {
      const { text, format, config } = readConfig(file);
      const { version } = await fleetCall(() =>
        publishFleet(redisOf(options), text, {
          channel: options.channel,
          format,
          source: file,
          ttlMs: ttlMs(options.ttl),
          secret: secretOf(options),
        }),
      );
      if (options.json) return printJson({ channel: options.channel, version });
      const count = `${config.policies.length} ${config.policies.length === 1 ? 'policy' : 'policies'}`;
      line(
        `published ${count} from ${file} to ${options.channel} as version ${version}${options.ttl === undefined ? '' : `, lease ${options.ttl}`}`,
      );
    });

  withFleet(fleet.command('renew'))
    .description("renew the published set's lease on every member")
    .requiredOption('--ttl <duration>', 'new lease from now (e.g. 10m)', parseTtl)
    .option('--json', 'print { channel, version } as JSON')
    .addHelpText('after', example('havoc fleet renew --ttl 10m --redis redis://redis:6379'))
    .action(async (options: FleetOptions & { ttl: string }) => {
      const { version } = await fleetCall(() =>
        renewFleet(redisOf(options), { channel: options.channel, ttlMs: ttlMs(options.ttl)!, secret: secretOf(options) }),
      );
      if (options.json) return printJson({ channel: options.channel, version });
      line(`renewed version ${version} on ${options.channel}: ${options.ttl} from now`);
    });

  withFleet(fleet.command('halt'))
    .description('publish "no fleet set": every member drops its fleet layer (its own layers stay)')
    .option('--json', 'print { channel, version } as JSON')
    .addHelpText('after', example('havoc fleet halt --redis redis://redis:6379'))
    .action(async (options: FleetOptions) => {
      const { version } = await fleetCall(() =>
        publishFleet(redisOf(options), null, { channel: options.channel, secret: secretOf(options) }),
      );
      if (options.json) return printJson({ channel: options.channel, version });
      line(`halted the fleet on ${options.channel}: version ${version} clears every member's fleet layer`);
    });

  withFleet(fleet.command('status'))
    .description('the published set and every member: the version it applied, what it refused and why, when it was last seen')
    .option('--json', 'print { channel, published, members } as JSON')
    .addHelpText('after', example('havoc fleet status --redis redis://redis:6379'))
    .action(async (options: FleetOptions) => {
      const redis = redisOf(options);
      const [published, members] = await fleetCall(() =>
        Promise.all([fleetSet(redis, { channel: options.channel }), fleetMembers(redis, { channel: options.channel })]),
      );
      if (options.json) {
        const set =
          published === null
            ? null
            : { ...published.record, signed: published.record.sig !== undefined, remainingMs: published.remainingMs };
        if (set !== null) delete set.sig;
        return printJson({ channel: options.channel, published: set, members });
      }
      if (published === null) line(`${options.channel}: nothing published (or its lease ran out)`);
      else {
        const { record, remainingMs } = published;
        const what = record.config === null ? 'halt (no fleet set)' : 'a set';
        const lease = remainingMs === null ? '' : `, lease ${showMs(remainingMs)} left`;
        line(`${options.channel}: version ${record.version}, ${what}${record.sig === undefined ? '' : ', signed'}${lease}`);
      }
      line();
      if (members.length === 0) return line('no members');
      const current = published?.record.version;
      const now = Date.now();
      const rows = members.map((m) => [
        m.member,
        current !== undefined && m.version === current ? paint('green', String(m.version)) : String(m.version),
        m.error === null
          ? 'ok'
          : paint('red', `refused${m.rejectedVersion === null ? '' : ` ${m.rejectedVersion}`}: ${m.error.split('\n')[0]}`),
        `${m.host}:${m.pid}`,
        `${showMs(Math.max(0, now - m.lastSeen))} ago`,
      ]);
      line(table(['MEMBER', 'VERSION', 'STATE', 'PROCESS', 'SEEN'], rows));
      const behind = members.filter((m) => current !== undefined && m.version !== current).length;
      if (behind > 0) line(paint('yellow', `${behind} of ${members.length} not on version ${current}`));
    });
}
