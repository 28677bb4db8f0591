// Bull Board at /ui: every stage queue with its jobs, behind the token. A browser cannot send a
// Bearer header when opening a link, so `/ui?token=…` checks the token once, stores it in an
// HttpOnly, SameSite=Strict cookie and redirects to the same page without it (the token stays out
// of the address bar and history); after that the cookie, or a Bearer header, is accepted.
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { Queue } from 'bullmq';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { bearerToken, cookieValue, refuse, TOKEN_COOKIE, tokenCookie, type TokenCheck } from './gateway-auth.js';

export const DASHBOARD_PATH = '/ui';

export async function registerDashboard(app: FastifyInstance, options: { check: TokenCheck; queues: Queue[] }): Promise<void> {
  const { check } = options;
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(DASHBOARD_PATH);
  createBullBoard({
    // Read-only: cancelling and retrying go through the executor, which keeps submissions in step.
    queues: options.queues.map((q) => new BullMQAdapter(q, { readOnlyMode: true })),
    // @bull-board/fastify may bring its own copy of @bull-board/api: the same interface, other types.
    serverAdapter: serverAdapter as unknown as Parameters<typeof createBullBoard>[0]['serverAdapter'],
    options: { uiConfig: { boardTitle: 'xpr executor' } },
  });

  await app.register(async (scope) => {
    scope.addHook('onRequest', async (request, reply) => {
      const fromQuery = queryToken(request);
      if (fromQuery !== undefined) {
        if (!check.matches(fromQuery)) return refuse(reply, true);
        return reply
          .header('set-cookie', tokenCookie(fromQuery, DASHBOARD_PATH))
          .redirect(withoutToken(request.url), 303);
      }
      const given = cookieValue(request, TOKEN_COOKIE) ?? bearerToken(request);
      if (!check.matches(given)) return refuse(reply, given !== undefined);
    });
    await scope.register(serverAdapter.registerPlugin(), { prefix: DASHBOARD_PATH });
  });
}

function queryToken(request: FastifyRequest): string | undefined {
  const query = request.query as Record<string, unknown> | undefined;
  const token = query?.['token'];
  return typeof token === 'string' ? token : undefined;
}

function withoutToken(url: string): string {
  const parsed = new URL(url, 'http://gateway');
  parsed.searchParams.delete('token');
  return `${parsed.pathname}${parsed.search}`;
}
