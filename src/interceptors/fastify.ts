// Faults on Fastify routes: an `onRequest` hook over the same `actOnRequest` as node:http.
// Typed structurally, so havoc does not depend on fastify.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Engine } from '../engine.js';
import { HavocError } from '../errors.js';
import { actOnRequest, decideRequest } from './http.js';

interface FastifyRequestLike {
  url: string;
  raw: IncomingMessage;
}

interface FastifyReplyLike {
  raw: ServerResponse;
  hijack(): unknown;
}

interface FastifyInstanceLike {
  addHook(name: 'onRequest', hook: (request: FastifyRequestLike, reply: FastifyReplyLike) => Promise<unknown>): unknown;
}

/** Options of {@link fastifyPlugin}. */
export interface FastifyPluginOptions {
  engine: Engine;
}

/**
 * `app.register(fastifyPlugin, { engine })`: faults on every route of the application (the
 * plugin is not encapsulated, like one wrapped by fastify-plugin).
 */
export function fastifyPlugin(app: FastifyInstanceLike, options: FastifyPluginOptions, done: (error?: Error) => void): void {
  const engine = options?.engine;
  if (engine === undefined || typeof engine.decide !== 'function') {
    done(new HavocError('fastifyPlugin needs an engine: app.register(fastifyPlugin, { engine })'));
    return;
  }
  app.addHook('onRequest', async (request, reply) => {
    const decision = decideRequest(engine, request.url, request.raw);
    if (decision === null) return undefined;
    const verdict = await actOnRequest(engine, decision, request.raw, reply.raw);
    if (verdict === 'proceed') return undefined;
    // The response was written (or the socket is gone) outside Fastify: stop its lifecycle.
    reply.hijack();
    return reply;
  });
  done();
}

// What fastify-plugin sets: register into the parent context rather than a child one.
Object.assign(fastifyPlugin, {
  [Symbol.for('skip-override')]: true,
  [Symbol.for('fastify.display-name')]: 'havoc',
});
