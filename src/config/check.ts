/**
 * Checking a plain configuration value by the core's rules.
 *
 * The rules (fields, spellings, limits, enumerations, messages) are all in the Rust core
 * (`crates/havoc-core/src/policy/read.rs`). This file converts the value into the core's wire
 * form (reading duration strings, and keeping what JSON would lose), and turns the core's
 * findings into `ConfigIssue`s with a line and column where the source text gives one.
 */
import { parseDuration } from '../duration.js';
import type { ConfigIssue } from '../errors.js';
import native = require('../native.js');
import type { Config } from '../types.js';
import { errorMessage, formatPath, formatStep } from './position.js';
import type { Locate, Path, Segment } from './position.js';

/** The core's wire form of a document, see `Value::from_wire` in `crates/havoc-core/src/policy/value.rs`. */
type Wire =
  | null
  | boolean
  | number
  | string
  | Wire[]
  | { map: [string, Wire][] }
  | { number: number | string; text?: string }
  | { bool: boolean; text: string }
  | { utf16: number[] }
  | { duration: string; ms?: number; overflow?: true }
  | { object: string }
  | { type: string };

/** Which keys hold durations and policies, in every spelling; asked of the core once. */
interface Shape {
  topDurations: ReadonlySet<string>;
  policies: ReadonlySet<string>;
  policyDurations: ReadonlySet<string>;
}

let shape: Shape | undefined;

function documentShape(): Shape {
  if (!shape) {
    const keys = native.configShape();
    shape = { topDurations: new Set(keys.topDurations), policies: new Set(keys.policies), policyDurations: new Set(keys.policyDurations) };
  }
  return shape;
}

type NativeFinding = ReturnType<typeof native.readConfig>['findings'][number];

/** Where a value is: the top-level mapping, the list of policies, one policy, or elsewhere (no conversions). */
type Level = 'top' | 'policies' | 'policy' | 'other';

const LONE_SURROGATE = /\p{Cs}/u;

function isRecord(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Converts plain values into the wire form; `locate` gives the source text of scalars. */
class Converter {
  private readonly shape = documentShape();

  constructor(private readonly locate: Locate | undefined) {}

  value(value: unknown, label: string, level: Level): Wire {
    switch (typeof value) {
      case 'string':
        return LONE_SURROGATE.test(value) ? { utf16: Array.from({ length: value.length }, (_, i) => value.charCodeAt(i)) } : value;
      case 'number':
        return this.number(value, label);
      case 'boolean': {
        const text = this.locate?.(label)?.text;
        return text === undefined || text === String(value) ? value : { bool: value, text };
      }
      case 'object':
        if (value === null) return null;
        if (Array.isArray(value)) return this.list(value, label, level);
        if (isRecord(value)) return this.map(value, label, level);
        return { object: (value.constructor as { name?: string } | undefined)?.name ?? 'unknown' };
      default:
        return { type: typeof value };
    }
  }

  private number(value: number, label: string): Wire {
    const text = this.locate?.(label)?.text;
    const withText = text === undefined ? {} : { text };
    if (!Number.isFinite(value) || Object.is(value, -0)) return { number: Object.is(value, -0) ? '-0' : String(value), ...withText };
    return text === undefined || text === String(value) ? value : { number: value, text };
  }

  private list(items: readonly unknown[], label: string, level: Level): Wire[] {
    const out: Wire[] = [];
    // A for loop, not map: holes are read as undefined, and refused as such.
    for (let i = 0; i < items.length; i += 1)
      out.push(this.value(items[i], formatStep(label, i), level === 'policies' ? 'policy' : 'other'));
    return out;
  }

  private map(value: Record<string, unknown>, label: string, level: Level): { map: [string, Wire][] } {
    const pairs: [string, Wire][] = [];
    for (const key of Object.keys(value)) {
      const item = value[key];
      if (item === undefined) continue; // absent, as in a plain object written with `key: undefined`
      const childLabel = formatStep(label, key);
      // The core cannot hold a lone surrogate in a key; no field, protocol or header name has one, so it is refused anyway.
      const wireKey = LONE_SURROGATE.test(key) ? key.replace(/\p{Cs}/gu, '\uFFFD') : key;
      let wire: Wire;
      if (level === 'top' && this.shape.topDurations.has(key)) wire = this.duration(item, childLabel);
      else if (level === 'policy' && this.shape.policyDurations.has(key)) wire = this.duration(item, childLabel);
      else wire = this.value(item, childLabel, level === 'top' && this.shape.policies.has(key) ? 'policies' : 'other');
      pairs.push([wireKey, wire]);
    }
    return { map: pairs };
  }

  /** A duration string is read here, by `parseDuration`; its limits are the core's. */
  private duration(value: unknown, label: string): Wire {
    if (typeof value !== 'string' || LONE_SURROGATE.test(value)) return this.value(value, label, 'other');
    try {
      return { duration: value, ms: parseDuration(value) };
    } catch (error) {
      // A well-formed string past Go's ~292 years is out of range, not malformed.
      return /too large/.test(errorMessage(error)) ? { duration: value, overflow: true } : { duration: value };
    }
  }
}

/** The result of a check: the configuration, or every issue found (positions from `locate`). */
export type Checked = { config: Config; issues?: undefined } | { config?: undefined; issues: ConfigIssue[] };

/**
 * Checks a plain value by the core's rules, then (when it is sound) compiles it without
 * applying it, which finds what only the engine can tell, such as a SQL target that is not a
 * valid regex. `locate` is absent for a plain object, which has no positions.
 */
export function checkValue(input: unknown, locate?: Locate): Checked {
  const wire = new Converter(locate).value(input, '', 'top');
  const read = native.readConfig(JSON.stringify(wire));
  if (read.config === undefined || read.config === null) return { issues: read.findings.map((f) => toIssue(f, locate)) };
  const compiled = native.checkConfig(read.config);
  if (compiled.length > 0) {
    // The engine's paths use the canonical names, which for `policies[i].target` is also what the user wrote.
    const issues = compiled.map((issue) => toIssue({ path: parsePath(issue.path), key: false, message: issue.message }, locate));
    return { issues };
  }
  return { config: JSON.parse(read.config) as Config };
}

function parsePath(path: string): Segment[] {
  const out: Segment[] = [];
  for (const [, name, index] of path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) out.push(index === undefined ? (name ?? '') : Number(index));
  return out;
}

/** A finding with a position: its own, else that of the nearest enclosing node that has one. */
function toIssue(finding: Pick<NativeFinding, 'path' | 'key' | 'message' | 'first'>, locate: Locate | undefined): ConfigIssue {
  const path: Path = finding.path;
  let message = finding.message;
  const firstLine = finding.first && locate?.(formatPath(finding.first))?.value?.line;
  // The core ends such a message with `(first defined at <path>)`; the line is known here.
  if (firstLine !== undefined && message.endsWith(')')) message = `${message.slice(0, -1)}, line ${firstLine})`;
  const issue: ConfigIssue = { path: formatPath(path), message };
  if (!locate) return issue;
  for (let p = path; ; p = p.slice(0, -1)) {
    const found = locate(formatPath(p));
    const position = found && (p === path && finding.key ? (found.key ?? found.value) : (found.value ?? found.key));
    if (position) {
      issue.line = position.line;
      issue.column = position.column;
      break;
    }
    if (p.length === 0) break;
  }
  return issue;
}
