// A small HTTP server that speaks the gateway's worker protocol (lease, heartbeat, complete, fail,
// code by hash, Bearer token), so the remote worker can be tested against real HTTP before and
// apart from the real gateway. It records every request, and lets a test hand out tasks.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TaskData } from '../../src/executor/types.js';

export interface Recorded {
  path: string;
  body: Record<string, unknown>;
  at: number;
}

export interface FakeGateway {
  url: string;
  port: number;
  token: string;
  requests: Recorded[];
  /** Queue a task for the next lease. */
  add(taskId: string, data: TaskData): void;
  /** Serve this text for a code hash. */
  code: Map<string, string>;
  /** Resolves when a request to `path` has been recorded matching `pred`. */
  waitFor(path: string, pred?: (r: Recorded) => boolean): Promise<Recorded>;
  /** Stops listening (dropping open connections); `listen()` again on the same port. */
  close(): Promise<void>;
  listen(): Promise<void>;
}

/** A lease with no task waits this long, then answers 204 (the real gateway waits up to 20 s). */
const EMPTY_LEASE_WAIT_MS = 100;

export async function startFakeGateway(options: { token?: string; port?: number } = {}): Promise<FakeGateway> {
  const token = options.token ?? 'secret-token';
  const tasks: { taskId: string; data: TaskData }[] = [];
  const requests: Recorded[] = [];
  const code = new Map<string, string>();
  const waiters: { path: string; pred: (r: Recorded) => boolean; resolve: (r: Recorded) => void }[] = [];
  let leases = 0;

  const record = (r: Recorded): void => {
    requests.push(r);
    for (const w of [...waiters]) {
      if (w.path === r.path && w.pred(r)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(r);
      }
    }
  };

  const handler = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString();
    const path = (req.url ?? '').split('?')[0]!;
    if (req.headers.authorization !== `Bearer ${token}`) {
      res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ message: 'bad token' }));
      return;
    }
    const body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    record({ path, body, at: Date.now() });
    if (req.method === 'GET' && path.startsWith('/api/v1/code/')) {
      const c = code.get(decodeURIComponent(path.slice('/api/v1/code/'.length)));
      if (c === undefined) res.writeHead(404).end('no such code');
      else res.writeHead(200, { 'content-type': 'text/javascript' }).end(c);
      return;
    }
    if (req.method !== 'POST') {
      res.writeHead(404).end();
      return;
    }
    switch (path) {
      case '/api/v1/workers/lease': {
        if (!tasks.length) await new Promise((r) => setTimeout(r, EMPTY_LEASE_WAIT_MS));
        const task = tasks.shift();
        if (!task) {
          res.writeHead(204).end();
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ leaseToken: `lease-${++leases}`, taskId: task.taskId, data: task.data }));
        return;
      }
      case '/api/v1/workers/heartbeat':
      case '/api/v1/workers/complete':
      case '/api/v1/workers/fail':
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        return;
      default:
        res.writeHead(404).end();
    }
  };

  const server = http.createServer((req, res) => {
    handler(req, res).catch((err: unknown) => res.writeHead(500).end(String(err)));
  });
  let port = options.port ?? 0;
  const listen = (): Promise<void> => new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      port = (server.address() as AddressInfo).port;
      resolve();
    });
  });
  await listen();

  const gateway: FakeGateway = {
    get url() { return `http://127.0.0.1:${port}`; },
    get port() { return port; },
    token,
    requests,
    code,
    add(taskId, data) { tasks.push({ taskId, data }); },
    waitFor(p, pred = () => true) {
      const found = requests.find((r) => r.path === p && pred(r));
      if (found) return Promise.resolve(found);
      return new Promise((resolve) => waiters.push({ path: p, pred, resolve }));
    },
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
    listen,
  };
  return gateway;
}
