// Optional peer dependencies (drivers, OpenTelemetry) are the application's own copies,
// loaded on first use so that havoc loads without them.
const loaded = new Map<string, unknown>();

/** The application's `name` package, or `null` when it is not installed. Memoized. */
export function optionalPeer<T>(name: string): T | null {
  if (!loaded.has(name)) {
    let module: unknown = null;
    try {
      module = require(name);
    } catch {
      // Not installed: the caller falls back.
    }
    loaded.set(name, module);
  }
  return loaded.get(name) as T | null;
}
