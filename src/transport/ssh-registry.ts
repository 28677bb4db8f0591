// The process-wide registry of SSH connections: one per endpoint (SshTarget.key), shared by every
// SshTransport and every connection that jumps through it, so two systems naming the same host
// (or the same jump host) log in once. ExPyRe opens a new `ssh` per command; this is why xpr does not.
import { SshConnection, type ConnectionPool } from './ssh-connection.js';
import type { SshTarget } from './ssh-target.js';

export { connectionsOpened } from './ssh-connection.js';

const connections = new Map<string, SshConnection>();

const pool: ConnectionPool = {
  acquire: acquireConnection,
  closed: (conn) => {
    if (connections.get(conn.target.key) === conn) connections.delete(conn.target.key);
  },
};

/** The shared connection to `target`, made (not yet connected) if there is none; one more user of it. */
export function acquireConnection(target: SshTarget): SshConnection {
  let conn = connections.get(target.key);
  if (!conn) {
    conn = new SshConnection(target, pool);
    connections.set(target.key, conn);
  }
  conn.refs++;
  return conn;
}

/** Close every SSH connection (for tests and shutdown); transports opened before must not be used. */
export async function closeAllSshConnections(): Promise<void> {
  await Promise.all([...connections.values()].map((c) => c.shutdown()));
}
