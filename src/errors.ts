/** Base class of every error havoc throws on purpose, so callers can tell them from bugs. */
export class HavocError extends Error {
  static {
    // On the prototype, like the built-in errors: not an own enumerable property of each instance.
    this.prototype.name = 'HavocError';
  }
}

/** One problem found in a configuration. */
export interface ConfigIssue {
  /** Where the problem is, with the keys as the user spelled them: `policies[2].latency_duration`; `''` for the document itself. */
  path: string;
  /** 1-based; absent when the input was a plain object rather than text. */
  line?: number;
  /** 1-based, in UTF-16 code units. */
  column?: number;
  message: string;
}

/** Beyond this many issues the message summarises the rest; `issues` always holds them all. */
const MAX_LISTED_ISSUES = 100;

/** A configuration was refused. `issues` lists every problem found, not only the first. */
export class ConfigError extends HavocError {
  static {
    this.prototype.name = 'ConfigError';
  }

  readonly issues: ConfigIssue[];
  /** The file path or label of the configuration, when there is one. */
  declare readonly source?: string; // `declare`: no own `source: undefined` when there is none

  constructor(issues: readonly ConfigIssue[], source?: string, options?: ErrorOptions) {
    super(formatMessage(issues, source), options);
    this.issues = issues.map((issue) => ({ ...issue }));
    if (source !== undefined) this.source = source;
  }
}

/** `havoc.yaml:12:5 policies[2].latency_duration: must be ...` */
export function formatConfigIssue(issue: ConfigIssue, source?: string): string {
  let location = source ?? '';
  if (issue.line !== undefined) {
    location += `${location ? ':' : ''}${issue.line}`;
    if (issue.column !== undefined) location += `:${issue.column}`;
  }
  const subject = issue.path ? `${issue.path}: ${issue.message}` : issue.message;
  return location ? `${location} ${subject}` : subject;
}

function formatMessage(issues: readonly ConfigIssue[], source?: string): string {
  const lines = issues.slice(0, MAX_LISTED_ISSUES).map((issue) => formatConfigIssue(issue, source));
  if (issues.length > MAX_LISTED_ISSUES) lines.push(`... and ${issues.length - MAX_LISTED_ISSUES} more problems`);
  if (issues.length === 1) return lines[0] ?? '';
  const where = source === undefined ? 'the configuration' : source;
  return [`${issues.length} problems in ${where}:`, ...lines].join('\n');
}

/** The error a dropped outgoing request fails with, shaped like a real connection reset. */
export class InjectedNetworkError extends HavocError {
  static {
    this.prototype.name = 'InjectedNetworkError';
  }
  readonly code = 'ECONNRESET';
  readonly policy: string;

  constructor(policy: string, url: string) {
    super(`read ECONNRESET (connection dropped by havoc policy "${policy}" for ${url})`);
    this.policy = policy;
  }
}
