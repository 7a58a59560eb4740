/**
 * The control plane as the CLI reaches it: `--url` / `HAVOC_URL`, `--token` / `HAVOC_TOKEN`
 * sent as a header (never printed, never put in a URL). Every failure becomes a `CliError` with
 * exit code 1 that says what to do: unreachable, 401 (which variable to set), or the server's
 * `{ error, issues }`.
 */
import type { Command } from 'commander';

import type { ConfigIssue } from '../errors.js';
import { CliError, formatIssue } from './output.js';

export const DEFAULT_URL = 'http://127.0.0.1:9090';
/** No request to the control plane may hang a CLI (or a scenario's clean-up) for longer. */
const REQUEST_TIMEOUT_MS = 10_000;

export interface ServiceOptions {
  url?: string;
  token?: string;
}

/** Adds `--url` and `--token` to a command (the program's own, given before the command, count too). */
export function withService(command: Command): Command {
  return serviceOptions(command).hook('preAction', (_, action) => {
    const globals = action.parent?.opts<ServiceOptions>() ?? {};
    for (const key of ['url', 'token'] as const) {
      if (action.getOptionValue(key) === undefined && globals[key] !== undefined) action.setOptionValue(key, globals[key]);
    }
  });
}

/** `--url` and `--token`, as the program and each command that reaches the service take them. */
export function serviceOptions(command: Command): Command {
  return command
    .option('--url <url>', `control plane URL (env HAVOC_URL; default ${DEFAULT_URL})`)
    .option('--token <token>', 'control plane token, sent as a header (env HAVOC_TOKEN; prefer the variable)');
}

export interface StateLease {
  layer: string;
  ttlMs: number;
  remainingMs: number;
}

export interface PlaneState {
  version: number;
  halted: boolean;
  warmupRemainingMs: number;
  policies: Record<string, unknown>[];
  layers: { name: string; policies: string[]; lease: { ttlMs: number; remainingMs: number } | null }[];
  leases: StateLease[];
  history: { version: number; cause: string; policies: number; layers?: unknown }[];
}

export class Client {
  readonly base: URL;
  readonly #token: string;

  constructor(options: ServiceOptions = {}) {
    const raw = options.url ?? process.env.HAVOC_URL ?? DEFAULT_URL;
    let base: URL;
    try {
      base = new URL(raw);
    } catch {
      throw new CliError(`--url: not a URL: ${JSON.stringify(raw)}`);
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new CliError(`--url: must be http or https (got ${base.protocol})`);
    if (base.username !== '' || base.password !== '' || base.search !== '')
      throw new CliError('--url: put no credentials or query in the URL; send the token with HAVOC_TOKEN or --token');
    this.base = base;
    this.#token = options.token ?? process.env.HAVOC_TOKEN ?? '';
  }

  /** Where the control plane is, as shown to people (no token, ever). */
  get where(): string {
    return this.base.origin;
  }

  async request(
    method: string,
    path: string,
    options: { body?: string; type?: string; query?: Record<string, string> } = {},
  ): Promise<unknown> {
    const url = new URL(path, this.base);
    for (const [key, value] of Object.entries(options.query ?? {})) url.searchParams.set(key, value);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.#token !== '') headers['x-havoc-token'] = this.#token;
    if (options.type !== undefined) headers['content-type'] = options.type;
    let response: Response;
    try {
      // The control plane never redirects; following one would send the token to wherever it points.
      response = await fetch(url, {
        method,
        headers,
        body: options.body,
        redirect: 'error',
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const reason = cause?.code ?? cause?.message ?? (error as Error).message;
      throw new CliError(
        `cannot reach the havoc control plane at ${this.where} (${reason}): is the service running? set HAVOC_URL or --url`,
      );
    }
    const text = await response.text();
    if (response.status === 401) {
      throw new CliError(
        this.#token === ''
          ? `the control plane at ${this.where} needs a token (401): set HAVOC_TOKEN (or pass --token)`
          : `the control plane at ${this.where} refused the token (401): check HAVOC_TOKEN (or --token)`,
      );
    }
    let body: unknown;
    try {
      body = text === '' ? {} : JSON.parse(text);
    } catch {
      throw new CliError(`${method} ${url.pathname}: ${response.status}, not JSON: is ${this.where} a havoc control plane?`);
    }
    if (!response.ok) {
      const { error, issues } = body as { error?: string; issues?: ConfigIssue[] };
      const details = Array.isArray(issues) && issues.length > 0 ? issues.map((issue) => `  ${formatIssue(issue)}`).join('\n') : '';
      const message = `${method} ${url.pathname}: ${response.status} ${error ?? response.statusText}`;
      throw new CliError(details === '' || issues!.length === 1 ? message : `${message}\n${details}`);
    }
    return body;
  }

  state(): Promise<PlaneState> {
    return this.request('GET', '/havoc/state') as Promise<PlaneState>;
  }

  /** Prometheus text of `/metrics`. */
  async metrics(): Promise<string> {
    const headers: Record<string, string> = {};
    if (this.#token !== '') headers['x-havoc-token'] = this.#token;
    try {
      const response = await fetch(new URL('/metrics', this.base), {
        headers,
        redirect: 'error',
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      return response.ok ? await response.text() : '';
    } catch {
      return '';
    }
  }

  /** Replaces the `api` layer with a config file's text (`json` when the file is `.json`). */
  apply(text: string, format: 'json' | 'yaml', ttl?: string): Promise<PlaneState> {
    return this.request('PUT', '/havoc/policies', {
      body: text,
      type: format === 'json' ? 'application/json' : 'application/yaml',
      query: ttl === undefined ? {} : { ttl },
    }) as Promise<PlaneState>;
  }

  remove(): Promise<PlaneState & { removed: boolean }> {
    return this.request('DELETE', '/havoc/policies') as Promise<PlaneState & { removed: boolean }>;
  }

  renew(ttl?: string): Promise<{ layer: string; remainingMs: number }> {
    return this.request('POST', '/havoc/renew', { query: ttl === undefined ? {} : { ttl } }) as Promise<{
      layer: string;
      remainingMs: number;
    }>;
  }
}

/** Live fault counts from Prometheus text: `havoc_faults_injected_total{policy,protocol,fault}`. */
export function faultCounts(metrics: string): { policy: string; protocol: string; fault: string; count: number }[] {
  const out: { policy: string; protocol: string; fault: string; count: number }[] = [];
  for (const row of metrics.split('\n')) {
    if (!row.startsWith('havoc_faults_injected_total{')) continue;
    const close = row.lastIndexOf('}');
    const labels: Record<string, string> = {};
    for (const [, key, value] of row.slice(row.indexOf('{') + 1, close).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g))
      labels[key!] = value!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    const count = Number(row.slice(close + 1).trim());
    out.push({ policy: labels.policy ?? '', protocol: labels.protocol ?? '', fault: labels.fault ?? '', count });
  }
  return out;
}
