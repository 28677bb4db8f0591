// The executor's public API: what `import { workflow, Executor } from 'xpr'` gives.
export { workflow } from './workflow.js';
export { Executor, type ExecutorInfo, type LaunchOptions } from './executor.js';
export { ExecutorClient, SubmissionFailed, type Health, type ListQuery } from './client.js';
export { BEFLOW_SETTINGS, type BeflowSetting } from './settings.js';
export type {
  CacheRecord, CacheStats, StageContext, StageError, StageFunction, StageProgress, StageSpec, Submission, SubmissionEvent,
  SubmissionStatus, Workflow,
} from './types.js';
