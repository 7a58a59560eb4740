/**
 * The scenario file of `havoc run`: its keys are fixed, unknown keys are refused, and every
 * problem is reported at once as `file:line:col: path: message`. A step's chaos is a config
 * file (`config:`, relative to the scenario) or inline `policies:`, checked as a config.
 */
import { readFileSync } from 'node:fs';
import { dirname, extname, resolve } from 'node:path';

import { loadConfig } from '../config.js';
import { checkValue } from '../config/check.js';
import { formatStep, sortIssues, type Locate } from '../config/position.js';
import { readYaml } from '../config/text.js';
import { parseDuration } from '../duration.js';
import { ConfigError, type ConfigIssue } from '../errors.js';
import { CliError, EXIT, formatIssue } from './output.js';

export interface Slo {
  windowMs: number;
  maxErrorRate?: number;
  maxP99Ms?: number;
  minApdex?: number;
  apdexTMs: number;
}

export interface Step {
  name: string;
  durationMs: number;
  /** The chaos of the step, as the text sent to the control plane; none for a baseline. */
  chaos?: Chaos;
}

export interface Chaos {
  text: string;
  format: 'json' | 'yaml';
  policies: string[];
}

export interface Scenario {
  probe: { url: string; intervalMs: number; timeoutMs: number };
  slo: Slo;
  steps: Step[];
}

const KEYS = {
  top: ['version', 'probe', 'slo', 'steps'],
  probe: ['url', 'interval', 'timeout'],
  slo: ['window', 'max_error_rate', 'max_p99', 'min_apdex', 'apdex_t'],
  step: ['name', 'duration', 'config', 'policies'],
} as const;

/** A probe more often than this measures the probe, not the service. */
const MIN_INTERVAL_MS = 10;

type Mapping = Record<string, unknown>;
const isMap = (value: unknown): value is Mapping => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Reads and checks a scenario; throws a `CliError` (exit 1) listing every problem. */
export function loadScenario(file: string): Scenario {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new CliError(`${file}: cannot read the scenario: ${(error as Error).message}`);
  }
  const parsed = readYaml(text);
  const issues: ConfigIssue[] = [...parsed.issues];
  const fail = () =>
    new CliError(
      sortIssues(issues)
        .map((issue) => formatIssue(issue, file))
        .join('\n'),
      EXIT.input,
      true,
    );
  if (parsed.fatal) throw fail();
  const checker = new Checker(parsed.locate, issues);
  const scenario = checker.scenario(parsed.value, dirname(file));
  if (issues.length > 0 || scenario === undefined) throw fail();
  return scenario;
}

class Checker {
  constructor(
    readonly locate: Locate,
    readonly issues: ConfigIssue[],
  ) {}

  issue(path: string, message: string, at: 'key' | 'value' = 'value'): void {
    const located = this.locate(path);
    this.issues.push({ path, message, ...(at === 'key' ? (located?.key ?? located?.value) : (located?.value ?? located?.key)) });
  }

  mapping(value: unknown, path: string, keys: readonly string[]): Mapping | undefined {
    if (!isMap(value)) {
      this.issue(path, `must be a mapping with ${keys.join(', ')}`);
      return undefined;
    }
    for (const key of Object.keys(value)) {
      if (!keys.includes(key)) this.issue(formatStep(path, key), `unknown key "${key}" (expected one of ${keys.join(', ')})`, 'key');
    }
    return value;
  }

  duration(map: Mapping, path: string, key: string, required: boolean): number | undefined {
    const at = join(path, key);
    const value = map[key];
    if (value === undefined) {
      if (required) this.issue(path, `${key} is required (a duration such as 5s)`);
      return undefined;
    }
    if (typeof value !== 'string' && typeof value !== 'number') {
      this.issue(at, 'must be a duration such as 200ms or 5s');
      return undefined;
    }
    try {
      const ms = parseDuration(value);
      if (ms <= 0) this.issue(at, 'must be more than 0');
      return ms;
    } catch (error) {
      this.issue(at, (error as Error).message);
      return undefined;
    }
  }

  ratio(map: Mapping, path: string, key: string): number | undefined {
    const value = map[key];
    if (value === undefined) return undefined;
    if (typeof value !== 'number' || !(value >= 0 && value <= 1)) {
      this.issue(join(path, key), 'must be a number from 0 to 1');
      return undefined;
    }
    return value;
  }

  scenario(value: unknown, base: string): Scenario | undefined {
    const top = this.mapping(value, '', KEYS.top);
    if (top === undefined) return undefined;
    if (top.version !== 1) this.issue('version', top.version === undefined ? 'version is required and must be 1' : 'must be 1');
    const probe = this.probe(top.probe);
    const slo = this.slo(top.slo);
    const steps = this.steps(top.steps, base);
    return probe && slo && steps ? { probe, slo, steps } : undefined;
  }

  probe(value: unknown): Scenario['probe'] | undefined {
    if (value === undefined) return void this.issue('', 'probe is required: { url, interval, timeout }');
    const map = this.mapping(value, 'probe', KEYS.probe);
    if (map === undefined) return undefined;
    let url: string | undefined;
    if (typeof map.url !== 'string')
      this.issue(map.url === undefined ? 'probe' : 'probe.url', 'probe.url is required: an http(s) URL to GET');
    else {
      try {
        const parsed = new URL(map.url);
        if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') this.issue('probe.url', 'must be an http or https URL');
        else url = map.url;
      } catch {
        this.issue('probe.url', `not a URL: ${JSON.stringify(map.url)}`);
      }
    }
    const intervalMs = this.duration(map, 'probe', 'interval', false) ?? 200;
    if (intervalMs > 0 && intervalMs < MIN_INTERVAL_MS) this.issue('probe.interval', `must be at least ${MIN_INTERVAL_MS}ms`);
    const timeoutMs = this.duration(map, 'probe', 'timeout', false) ?? 2000;
    return url === undefined ? undefined : { url, intervalMs, timeoutMs };
  }

  slo(value: unknown): Slo | undefined {
    if (value === undefined) return void this.issue('', 'slo is required: { window, max_error_rate, max_p99, min_apdex, apdex_t }');
    const map = this.mapping(value, 'slo', KEYS.slo);
    if (map === undefined) return undefined;
    const windowMs = this.duration(map, 'slo', 'window', true);
    const maxP99Ms = this.duration(map, 'slo', 'max_p99', false);
    const apdexTMs = this.duration(map, 'slo', 'apdex_t', false);
    const maxErrorRate = this.ratio(map, 'slo', 'max_error_rate');
    const minApdex = this.ratio(map, 'slo', 'min_apdex');
    if (map.min_apdex !== undefined && map.apdex_t === undefined)
      this.issue('slo', 'min_apdex needs apdex_t (the satisfied threshold, e.g. 300ms)');
    if (map.max_error_rate === undefined && map.max_p99 === undefined && map.min_apdex === undefined)
      this.issue('slo', 'name at least one objective: max_error_rate, max_p99 or min_apdex');
    if (windowMs === undefined) return undefined;
    return { windowMs, maxErrorRate, maxP99Ms, minApdex, apdexTMs: apdexTMs ?? 300 };
  }

  steps(value: unknown, base: string): Step[] | undefined {
    if (!Array.isArray(value) || value.length === 0)
      return void this.issue(value === undefined ? '' : 'steps', 'steps is required: a list of { name, duration, config | policies }');
    const steps: Step[] = [];
    const names = new Set<string>();
    value.forEach((item, index) => {
      const path = `steps[${index}]`;
      const map = this.mapping(item, path, KEYS.step);
      if (map === undefined) return;
      if (typeof map.name !== 'string' || map.name === '')
        this.issue(map.name === undefined ? path : `${path}.name`, 'name is required (text)');
      else if (names.has(map.name)) this.issue(`${path}.name`, `step "${map.name}" is named twice`);
      else names.add(map.name);
      const durationMs = this.duration(map, path, 'duration', true);
      if (map.config !== undefined && map.policies !== undefined) this.issue(path, 'give config or policies, not both');
      const config =
        map.config !== undefined
          ? this.configFile(map.config, `${path}.config`, base)
          : map.policies !== undefined
            ? this.inline(map.policies, `${path}.policies`)
            : undefined;
      if (typeof map.name === 'string' && durationMs !== undefined)
        steps.push({ name: map.name, durationMs, ...(config ? { chaos: config } : {}) });
    });
    return steps.length === value.length ? steps : undefined;
  }

  configFile(value: unknown, path: string, base: string): Chaos | undefined {
    if (typeof value !== 'string' || value === '') return void this.issue(path, 'must be the path of a config file');
    const file = resolve(base, value);
    try {
      const config = loadConfig(file);
      const format = extname(file).toLowerCase() === '.json' ? 'json' : 'yaml';
      return { text: readFileSync(file, 'utf8'), format, policies: config.policies.map((p) => p.name) };
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      for (const issue of error.issues) this.issue(path, `${formatIssue(issue, value)}`);
      return undefined;
    }
  }

  /** Inline policies, checked as `{ version: 1, policies }` with positions in the scenario. */
  inline(value: unknown, path: string): Chaos | undefined {
    const checked = checkValue({ version: 1, policies: value }, (inner) =>
      inner.startsWith('policies') ? this.locate(path + inner.slice('policies'.length)) : undefined,
    );
    for (const issue of checked.issues ?? []) {
      const located = issue.path.startsWith('policies') ? path + issue.path.slice('policies'.length) : path;
      this.issues.push({ ...issue, path: located });
    }
    if (!checked.config) return undefined;
    return { text: JSON.stringify({ version: 1, policies: value }), format: 'json', policies: checked.config.policies.map((p) => p.name) };
  }
}

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}
