import native = require('./native.js');

/**
 * Statements at most this many UTF-16 units long are cached. Longer ones are rare and cost far
 * more to normalize than to cross into the addon, so caching them would only spend memory.
 */
export const SQL_CACHE_MAX_LENGTH = 1024;
/** Entries per generation (two of them) per function and thread: with the length bound, at most ~2 MiB of one-byte text. */
export const SQL_CACHE_ENTRIES = 256;

/**
 * A bounded map from statement text to its normalized form, one per function and thread
 * (module state is per isolate). Services send the same few statements again and again
 * (prepared statements, ORMs), and for a ~100-byte statement the N-API crossing and the two
 * string copies cost more than the normalizing itself: a hit skips all three.
 *
 * Two generations instead of a least-recently-used list: new entries go to `#young`; when it
 * is full it becomes `#old` and the previous old generation is dropped whole. A hit in `#old`
 * moves the entry back to `#young`, so hot statements survive every turnover. A hit is one or
 * two `Map` lookups, a miss never deletes entry by entry, and at most 2 × SQL_CACHE_ENTRIES
 * entries are held.
 */
class StatementCache {
  #young = new Map<string, string>();
  #old = new Map<string, string>();
  readonly #compute: (sql: string) => string;

  constructor(compute: (sql: string) => string) {
    this.#compute = compute;
  }

  get(sql: string): string {
    const young = this.#young.get(sql);
    if (young !== undefined) return young;
    const old = this.#old.get(sql);
    const value = old ?? this.#compute(sql);
    if (sql.length <= SQL_CACHE_MAX_LENGTH) {
      if (this.#young.size >= SQL_CACHE_ENTRIES) {
        this.#old = this.#young;
        this.#young = new Map();
      }
      this.#young.set(sql, value);
    }
    return value;
  }

  get size(): number {
    return this.#young.size + this.#old.size;
  }
}

const normalized = new StatementCache((sql) => native.normalizeSql(sql));
const fingerprinted = new StatementCache((sql) => native.fingerprintSql(sql));

/**
 * Normalizes a SQL statement: comments stripped outside quotes, whitespace collapsed,
 * everything outside quotes uppercased, wrapping parentheses and `;` removed.
 * Never throws; linear time. Repeated statements are answered from a small per-thread cache.
 */
export function normalizeSql(sql: string): string {
  return normalized.get(String(sql));
}

/** Like {@link normalizeSql}, plus every literal → `?`, `IN (…)` → `IN (?)`, multi-row VALUES collapsed. */
export function fingerprintSql(sql: string): string {
  return fingerprinted.get(String(sql));
}

/** Entries in this thread's caches, for tests. @internal */
export function sqlCacheSizes(): { normalize: number; fingerprint: number } {
  return { normalize: normalized.size, fingerprint: fingerprinted.size };
}
