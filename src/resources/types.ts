// Shapes shared by resource selection, configuration and schedulers.

/** A partition (or queue) as configured for a system, with units already parsed. */
export interface Partition {
  /** Cores per node. */
  num_cores: number;
  /** Longest wall time a job may ask for, in seconds. */
  max_time: number;
  /** Memory per node in kB, if the site states it. */
  max_mem?: number;
  /** Extra header lines for jobs on this partition (templated like the system header). */
  header?: string[];
  /** Name the scheduler knows the partition by; defaults to the config key. */
  partition?: string;
}

/** What a job was given after partition selection: the numbers the header templates see. */
export interface NodeChoice {
  /** Config key of the chosen partition (what `partitions` regexps match). */
  partitionKey: string;
  /** Name the scheduler sees (`partition` field, else the key). */
  partition: string;
  numNodes: number;
  numCores: number;
  numCoresPerNode: number;
  /** Wall time asked for, in seconds. */
  maxTime: number;
  /** Memory per node to ask for in kB, when the job stated a memory need. */
  maxMemPerNode?: number;
}
