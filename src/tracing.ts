// OpenTelemetry is an optional peer: when the application has `@opentelemetry/api`, faults
// become events on its active span. havoc never registers or replaces a tracer provider.
import { optionalPeer } from './peer.js';

type Attributes = Record<string, string | number | boolean>;
interface SpanLike {
  addEvent(name: string, attributes?: Attributes): unknown;
}
interface TraceApi {
  getActiveSpan(): SpanLike | undefined;
}

/** Adds an event to the active span, if OpenTelemetry is installed and a span is active. */
export function activeSpanEvent(name: string, attributes: Attributes): void {
  optionalPeer<{ trace: TraceApi }>('@opentelemetry/api')?.trace.getActiveSpan()?.addEvent(name, attributes);
}
