// autoparallelize, RemoteInfo, WFL_EXPYRE_INFO and the local pool.
export {
  autoparallelize, type AutoparaWrapper, type Inputs, type Operation, type OpResult,
} from './autoparallelize.js';
export { AUTOPARA_KEYS, type AutoparaDefaults, type AutoparaOptions, type Initializer } from './options.js';
export {
  EXPYRE_INFO_VAR, REMOTE_INFO_KEYS, RemoteInfo, chooseRemoteInfo, loadExpyreInfo, parseExpyreInfo,
  type ExpyreInfo, type RemoteChoice, type RemoteInfoFields,
} from './remoteinfo.js';
export { JOB_FAILED_FLAG, NO_MARK_PROCESSED_VAR } from './remote.js';
export { WorkerCrashedError, WorkerPool, type PoolOptions } from '../runner/pool.js';
export { POOL_SIZE_VARS } from '../runner/pool-size.js';
export { keyMatches, userFrames, type StackFrame } from './stack.js';
