// The public API of xpr.
export { Job, type JobOptions, type JobResults, type ResultsOptions, type StartOptions } from './job/job.js';
export { Project, currentProject, resetCurrentProject, type ProjectOptions } from './job/project.js';
export { Resources, type ResourcesSpec } from './resources/resources.js';
export { parseMemory, parseTime } from './resources/units.js';
export { loadConfig, getSystem } from './config/load.js';
export type { SystemConfig, XprConfig } from './config/schema.js';
export { JobStore, type JobRecord, type JobFilter } from './store/jobstore.js';
export { JOB_STATUSES, STATUS_GROUPS, expandStatuses, type JobStatus } from './store/status.js';
export { getScheduler } from './schedulers/registry.js';
export type { Scheduler, RemoteState, RemoteStatus, FailureReason } from './schedulers/types.js';
export type { Transport, ExecResult } from './transport/types.js';
export {
  ConfigError, JobDiedError, JobTimeoutError, RemoteError, UnreachableError, XprError, type ConfigIssue,
} from './errors.js';
// autoparallelize, RemoteInfo and the ConfigSet / OutputSpec they read and write.
export * from './configset/index.js';
export * from './autopara/index.js';
// remoteCall: a whole call as one job when its own *_REMOTEINFO variable says so.
export * from './remotecall/index.js';
// The executor: multi-stage workflows on per-stage worker pools over Redis.
export * from './executor/index.js';
