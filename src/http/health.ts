/**
 * Liveness and readiness, for people and for orchestrators: GET /healthz answers whenever the
 * process can answer at all; GET /readyz says whether it does everything it was started to do.
 */
import { sendJson } from './respond.js';
import type { WebContext } from './context.js';
import type { Route } from './router.js';

export function healthRoutes(ctx: WebContext): Route[] {
  return [
    {
      name: 'GET /healthz',
      methods: ['GET'],
      pattern: /^\/healthz$/,
      handle: ({ req, res }) => sendJson(req, res, 200, { status: 'ok' }),
    },
    {
      name: 'GET /readyz',
      methods: ['GET'],
      pattern: /^\/readyz$/,
      handle({ req, res }) {
        const { listening, stopping, bot, store, cluster } = ctx.readiness();
        // Chat works while the model loads, but image posts would only hear "loading" or "down":
        // not ready until the bot is (a server started without a model is ready as it is).
        const reasons: string[] = [];
        if (!listening) reasons.push('not listening');
        if (stopping) reasons.push('shutting down');
        // Local members keep chatting, but nothing reaches the other nodes: a balancer should
        // send newcomers elsewhere.
        if (cluster?.state === 'down') reasons.push(`cluster: Redis unreachable (${cluster.reason ?? 'unknown'})`);
        if (bot && (bot.state === 'loading' || bot.state === 'down'))
          reasons.push(`classifier ${bot.state}${bot.reason ? `: ${bot.reason}` : ''}`);
        const ready = reasons.length === 0;
        // Chat flows while history cannot be written (it waits in memory): still ready, but
        // degraded, with the reason, so a person or a probe sees the disk needs attention.
        const degraded = store?.state === 'degraded';
        sendJson(req, res, ready ? 200 : 503, {
          status: !ready ? 'not ready' : degraded ? 'degraded' : 'ready',
          ...(ready ? {} : { reasons }),
          ...(degraded ? { degraded: [`history: ${store.reason ?? 'writes are failing'}`] } : {}),
          listening,
          history: store ? { state: store.state, queued: store.queued, failedWrites: store.failedWrites } : { state: 'memory' },
          ...(cluster ? { cluster: { state: cluster.state, outages: cluster.outages } } : {}),
          classifier: bot ? { state: bot.state, reason: bot.reason, ...(bot.model ? { model: bot.model } : {}) } : null,
        });
      },
    },
  ];
}
