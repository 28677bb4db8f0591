// Public face of src/config: discovery, loading and the config types.
export { discoverProject, PROJECT_DIR_NAMES, type DiscoverOptions, type ProjectPaths } from './discover.js';
export { BUILT_IN, getSystem, loadConfig, type LoadedConfig, type LoadOptions } from './load.js';
export { DELETE_MARKER } from './merge.js';
export { BUILTIN_SYSTEM, builtinLocalSystem, localMachinePartition } from './normalize.js';
export { projectRundir, rundirExtra } from './rundir.js';
export { DEFAULTS, KNOWN_SCHEDULERS, type SchedulerName, type SystemConfig, type XprConfig } from './schema.js';
