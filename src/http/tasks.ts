/**
 * GET /api/tasks/{id}: how the classification of a posted image is going (pending, done with
 * labels, or failed with why). The id is the image's, as POST .../images answered it.
 */
import type { WebContext } from './context.js';
import { httpError } from './errors.js';
import { sendJson } from './respond.js';
import type { Route } from './router.js';

export function taskRoutes(ctx: WebContext): Route[] {
  return [
    {
      name: 'GET /api/tasks/{id}',
      methods: ['GET'],
      pattern: /^\/api\/tasks\/([^/]+)$/,
      async handle({ req, res, params }) {
        // In a cluster another node may hold it: the one that took the post.
        const task = ctx.tasks.get(params[0]) ?? (ctx.clusterTasks && /^[1-9]\d{0,15}$/.test(params[0]) ? await ctx.clusterTasks.load(Number(params[0])) : null);
        if (!task) throw httpError('NO_SUCH_TASK', params[0].slice(0, 40));
        sendJson(req, res, 200, task);
      },
    },
  ];
}
