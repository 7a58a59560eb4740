import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { context, trace, type ProxyTracerProvider } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { chaosFetch } from 'havoc';
import { engineWith } from './fixtures/http.js';

// The application's own tracing setup; havoc must only add events to its spans.
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
trace.setGlobalTracerProvider(provider);

test("each fault adds an event to the active span; the tracer provider stays the application's", async (t) => {
  const server = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const fetch = chaosFetch(
    engineWith([
      { name: 'slow-then-fail', type: 'http', target: '/a', latency_chance: 1, latency_duration: '5ms', error_chance: 1, error_code: 503 },
    ]),
  );
  const tracer = trace.getTracer('app');
  await tracer.startActiveSpan('checkout', async (span) => {
    t.is((await fetch(`${url}/a`)).status, 503);
    t.is((await fetch(`${url}/b`)).status, 200);
    span.end();
  });
  const [span] = exporter.getFinishedSpans();
  t.is(span?.name, 'checkout');
  t.deepEqual(
    span?.events.map((e) => [e.name, e.attributes]),
    [
      ['havoc.http.latency', { 'havoc.policy': 'slow-then-fail', 'havoc.target': `${url}/a`, 'havoc.latency_ms': 5 }],
      ['havoc.http.error', { 'havoc.policy': 'slow-then-fail', 'havoc.target': `${url}/a`, 'havoc.error_code': 503 }],
    ],
  );
  t.is((trace.getTracerProvider() as ProxyTracerProvider).getDelegate(), provider);
});
