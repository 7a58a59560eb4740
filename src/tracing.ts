// OpenTelemetry is an optional peer: when the application has `@opentelemetry/api`, faults
// become events on its active span. havoc never registers or replaces a tracer provider.
type Attributes = Record<string, string | number | boolean>;
interface SpanLike {
  addEvent(name: string, attributes?: Attributes): unknown;
}
interface TraceApi {
  getActiveSpan(): SpanLike | undefined;
}

let traceApi: TraceApi | null | undefined;

function loadTraceApi(): TraceApi | null {
  if (traceApi === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      traceApi = (require('@opentelemetry/api') as { trace: TraceApi }).trace;
    } catch {
      traceApi = null;
    }
  }
  return traceApi;
}

/** Adds an event to the active span, if OpenTelemetry is installed and a span is active. */
export function activeSpanEvent(name: string, attributes: Attributes): void {
  loadTraceApi()?.getActiveSpan()?.addEvent(name, attributes);
}
