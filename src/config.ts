/**
 * Loading and validating havoc configurations (pastaay-compatible YAML or JSON).
 *
 * Text is parsed with a position index on the side (`config/text.ts`), the plain value is
 * checked by the Rust core's rules (`config/check.ts`), and each finding is placed at its line
 * and column: YAML/JSON input gets positions, a plain object passed to `validateConfig` does
 * not. Every problem is collected before throwing.
 */
import { extname } from 'node:path';

import { checkValue } from './config/check.js';
import { readConfigFile } from './config/file.js';
import { sortIssues } from './config/position.js';
import { readJson, readYaml } from './config/text.js';
import { ConfigError } from './errors.js';
import type { Config } from './types.js';

export interface ParseConfigOptions {
  /** Default `'yaml'`. JSON is also valid YAML, but `'json'` parses it strictly, as JSON. */
  format?: 'yaml' | 'json';
  /** File path or label, used in error messages. */
  source?: string;
}

/** Parses and validates configuration text. Throws a `ConfigError` listing every problem. */
export function parseConfig(text: string, opts: ParseConfigOptions = {}): Config {
  const { source } = opts;
  // A byte order mark (text read with fs.readFileSync keeps it) is not part of the text:
  // positions on the first line are counted without it, as loadConfig's decoder does.
  const body = typeof text === 'string' ? text.replace(/^\uFEFF/, '') : text;
  const parsed = opts.format === 'json' ? readJson(body) : readYaml(body);
  if (parsed.fatal) throw new ConfigError(sortIssues(parsed.issues), source);
  const checked = checkValue(parsed.value, parsed.locate);
  const issues = [...parsed.issues, ...(checked.issues ?? [])];
  if (issues.length > 0 || !checked.config) throw new ConfigError(sortIssues(issues), source);
  return checked.config;
}

/** Reads, parses and validates a config file; `.json` files are parsed as JSON, anything else as YAML. */
export function loadConfig(path: string): Config {
  const text = readConfigFile(path);
  const format = extname(path).toLowerCase() === '.json' ? 'json' : 'yaml';
  return parseConfig(text, { format, source: path });
}

/**
 * Validates a plain object: a raw config with snake_case or camelCase keys, or a `Config`
 * that was already validated (the result is then deep-equal to the input).
 */
export function validateConfig(input: unknown, source?: string): Config {
  const checked = checkValue(input);
  if (!checked.config) throw new ConfigError(checked.issues, source);
  return checked.config;
}
