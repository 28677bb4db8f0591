// The gateway's one secret: the API token. Every route checks it, the dashboard included. The
// comparison hashes both sides first so that `timingSafeEqual` sees equal lengths and the time
// taken says nothing about how much of a guess was right.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** The cookie the dashboard's pages and their API calls carry after `/ui?token=…`. */
export const TOKEN_COOKIE = 'xpr_executor_token';

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** A constant-time check of candidates against one token. */
export class TokenCheck {
  readonly #expected: Buffer;

  constructor(token: string) {
    if (!token) throw new Error('the gateway needs a non-empty token');
    this.#expected = digest(token);
  }

  matches(candidate: string | undefined): boolean {
    if (candidate === undefined) return false;
    return timingSafeEqual(digest(candidate), this.#expected);
  }
}

/** The token a request carries in `Authorization: Bearer …`, if any. */
export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header !== 'string') return undefined;
  const match = /^Bearer\s+(.+)$/i.exec(header.trim());
  return match?.[1]?.trim();
}

/** The value of one cookie in the request's Cookie header. */
export function cookieValue(request: FastifyRequest, name: string): string | undefined {
  const header = request.headers.cookie;
  if (typeof header !== 'string') return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    try {
      return decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** Sends the one 401 answer, saying which token is expected and where it comes from. */
export function refuse(reply: FastifyReply, given: boolean): FastifyReply {
  const message = given
    ? 'The executor token is wrong.'
    : 'No executor token: send it as "Authorization: Bearer <token>".';
  return reply
    .code(401)
    .header('www-authenticate', 'Bearer realm="xpr-executor"')
    .send({
      statusCode: 401,
      error: 'Unauthorized',
      message: `${message} It is in the executor directory's executor.json and printed by "xpr executor launch"; workers read it from XPR_EXECUTOR_TOKEN.`,
    });
}

/** The `Set-Cookie` value that lets a browser open the dashboard after `/ui?token=…`. */
export function tokenCookie(token: string, path: string): string {
  return `${TOKEN_COOKIE}=${encodeURIComponent(token)}; Path=${path}; HttpOnly; SameSite=Strict`;
}
