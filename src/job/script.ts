// Rendering a job script from `templates/job.sh`: scheduler directives, the default header of the
// scheduler (`templates/headers/<name>.txt`), the system's and partition's header lines and the
// job's `header_extra`, all with ExPyRe's placeholders; then xpr's own body.
import fs from 'node:fs';
import { XprError } from '../errors.js';
import type { NodeChoice } from '../resources/types.js';
import { CODE_DIR } from '../runner/protocol.js';
import type { Scheduler } from '../schedulers/types.js';
import { templateFile, XPR_VERSION } from '../util/paths.js';
import { shQuote } from '../util/shell.js';

export interface ScriptInput {
  scheduler: Scheduler;
  schedName: string;
  node: NodeChoice;
  /** Job dirs relative to the submit dir (the system's rundir); more than one makes an array job. */
  jobDirs: readonly string[];
  stdoutFile: string;
  stderrFile: string;
  /** System header lines (ExPyRe placeholders). */
  header: readonly string[];
  noDefaultHeader: boolean;
  /** The chosen partition's header lines. */
  partitionHeader: readonly string[];
  headerExtra: readonly string[];
  commands: readonly string[];
  preCmds: readonly string[];
  postCmds: readonly string[];
  envVars: Readonly<Record<string, string>>;
  nodeCommand: string;
  shell: string;
  /** Hash of the bundled runner, its file name in the code dir. */
  runnerHash: string;
}

const templateCache = new Map<string, string>();

function readTemplate(rel: string): string {
  let t = templateCache.get(rel);
  if (t === undefined) {
    t = fs.existsSync(templateFile(rel)) ? fs.readFileSync(templateFile(rel), 'utf8') : '';
    templateCache.set(rel, t);
  }
  return t;
}

export const HEADER_PLACEHOLDERS = [
  'num_nodes', 'num_cores', 'num_cores_per_node', 'partition', 'queue', 'id', 'max_time', 'max_mem',
] as const;

/** Substitute `{placeholder}`s in one header line; `{{` and `}}` are literal braces, as in ExPyRe. */
export function fillHeaderLine(line: string, values: Record<string, string>, where: string): string {
  return line.replace(/\{\{|\}\}|\{([^{}]*)\}/g, (m, key: string | undefined) => {
    if (m === '{{') return '{';
    if (m === '}}') return '}';
    const v = values[key!];
    if (v === undefined) {
      throw new XprError(`${where}: unknown placeholder {${key}} in header line "${line}"`, {
        hint: `Known placeholders: ${HEADER_PLACEHOLDERS.map((p) => `{${p}}`).join(' ')}; write {{ and }} for literal braces.`,
      });
    }
    return v;
  });
}

export function renderScript(input: ScriptInput): string {
  const { scheduler, node } = input;
  const isArray = input.jobDirs.length > 1;
  const values: Record<string, string> = {
    num_nodes: String(node.numNodes),
    num_cores: String(node.numCores),
    num_cores_per_node: String(node.numCoresPerNode),
    partition: node.partition,
    queue: node.partition,
    id: input.schedName,
    max_time: scheduler.formatTime(node.maxTime),
    max_mem: node.maxMemPerNode === undefined ? '' : scheduler.formatMem(node.maxMemPerNode),
  };
  const defaultHeader = input.noDefaultHeader ? [] : readTemplate(`headers/${scheduler.name}.txt`).split('\n');
  const header = [
    ...scheduler.directives({
      schedName: input.schedName, node, arraySize: isArray ? input.jobDirs.length : 0,
      stdoutFile: input.stdoutFile, stderrFile: input.stderrFile,
    }),
    ...defaultHeader.filter((l) => l.trim() !== '').map((l) => fillHeaderLine(l, values, `default ${scheduler.name} header`)),
    ...input.header.map((l) => fillHeaderLine(l, values, 'system header')),
    ...input.partitionHeader.map((l) => fillHeaderLine(l, values, `partition ${node.partitionKey} header`)),
    ...input.headerExtra.map((l) => fillHeaderLine(l, values, 'header_extra')),
  ];
  // Job dirs are relative to the submit dir, where most schedulers start the job; PBS does not.
  const enter = scheduler.submitDirExpr === undefined ? ''
    : `cd -- "${scheduler.submitDirExpr}" || { echo "xpr: cannot enter the submit dir ${scheduler.submitDirExpr}" >&2; exit 97; }\n`;
  const select = isArray
    ? `job_dirs=(\n${input.jobDirs.map((d) => `  ${shQuote(d)}`).join('\n')}\n)\njob_dir="\${job_dirs[${scheduler.arrayIndexExpr}]}"`
    : `job_dir=${shQuote(input.jobDirs[0]!)}`;
  const body: Record<string, string> = {
    shell: input.shell,
    header: header.join('\n'),
    version: XPR_VERSION,
    select_job_dir: `# submitted from the system's run dir\n${enter}${select}`,
    num_nodes: values.num_nodes!,
    num_cores: values.num_cores!,
    num_cores_per_node: values.num_cores_per_node!,
    env_vars: Object.entries(input.envVars).map(([k, v]) => `export ${checkEnvName(k)}=${shQuote(v)}`).join('\n'),
    commands: input.commands.join('\n'),
    pre_cmds: input.preCmds.join('\n'),
    post_cmds: input.postCmds.join('\n'),
    node_command: input.nodeCommand,
    runner: shQuote(`../${CODE_DIR}/runner-${input.runnerHash}.mjs`),
  };
  return readTemplate('job.sh').replace(/\{\{(\w+)\}\}/g, (_m, k: string) => body[k] ?? '');
}

function checkEnvName(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
    throw new XprError(`env_vars: "${name}" is not a valid environment variable name`);
  }
  return name;
}
