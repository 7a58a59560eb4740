import native = require('./native.js');

/**
 * Normalizes a SQL statement: comments stripped outside quotes, whitespace collapsed,
 * everything outside quotes uppercased, wrapping parentheses and `;` removed.
 * Never throws; linear time.
 */
export function normalizeSql(sql: string): string {
  return native.normalizeSql(String(sql));
}

/** Like {@link normalizeSql}, plus every literal → `?`, `IN (…)` → `IN (?)`, multi-row VALUES collapsed. */
export function fingerprintSql(sql: string): string {
  return native.fingerprintSql(String(sql));
}
