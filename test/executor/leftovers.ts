// After a failed test, an executor that was not closed leaves its redis-server and worker processes
// running (they have their own process groups, as they must). Stop them from its directory.
import { readState } from '../../src/executor/directory.js';
import { alive } from '../../src/util/processes.js';
import { adoptRedisServer, ping } from '../../src/executor/redis-server.js';

export async function stopLeftovers(directory: string): Promise<void> {
  let state;
  try {
    state = readState(directory);
  } catch {
    return;
  }
  if (!state) return;
  for (const pid of state.workerPids ?? []) {
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  }
  if (state.redisOwned && await ping(state.redisUrl, 500) === 'ok') await adoptRedisServer(state.redisUrl).stop();
}
