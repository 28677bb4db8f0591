// Resource requests, partition choice, and the time/memory units they are written in.
export type { NodeChoice, Partition } from './types.js';
export {
  formatMemory, formatTime, parseMemory, parseTime, MEMORY_FORMATS, TIME_FORMATS, type MemoryUnit,
} from './units.js';
export {
  checkResources, Resources, RESOURCES_KEYS,
  type FindNodesOptions, type MemoryRequest, type ResourcesCheck, type ResourcesParseOptions, type ResourcesSpec,
} from './resources.js';
