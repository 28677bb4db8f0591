// remoteCall: a function that runs in this process, or as one batch job when its own environment
// variable (e.g. MYFIT_SIMPLE_FIT_REMOTEINFO, as wfl's WFL_GAP_SIMPLE_FIT_REMOTEINFO) holds a
// RemoteInfo. The variable has the form of WFL_EXPYRE_INFO: one RemoteInfo, or keys matched against
// the call stack. The job is a plain Job of the exported wrapper, so a rerun re-attaches by the
// hash of the arguments, input files are staged, output files come back into the working dir, and
// a remote exception is thrown here as RemoteError.
//
// Nesting: the job's environment clears the variable of every remoteCall this process knows and then
// applies the RemoteInfo's env_vars. So inside the job a wrapped function runs in that job unless
// its own variable was set on purpose in env_vars (where the remote-side shim then refuses, since a
// job cannot submit jobs), whatever the scheduler copies from the submitting shell.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NO_MARK_PROCESSED_VAR } from '../autopara/remote.js';
import { chooseRemoteInfo, describeChoice, loadExpyreInfo, RemoteInfo, type RemoteInfoFields } from '../autopara/remoteinfo.js';
import { callerFrame, userFrames, wrapperFrame, type StackFrame } from '../autopara/stack.js';
import { callSite, forUser, XprError } from '../errors.js';
import { locateFunction, type FunctionRef } from '../job/code.js';
import { Job, type JobOptions } from '../job/job.js';
import { splitCallArgs, type RemoteCallOptions } from './call-options.js';
import { copyOutputFiles } from './output-files.js';

export interface RemoteCallDefaults {
  /** Job name and the `<file>::<name>` frame that stack keys match; default: the function's name. */
  name?: string;
  /** The environment variable that sends calls to a system (JSON/YAML text or a file, as WFL_EXPYRE_INFO). */
  remoteInfoEnv?: string;
  /** Files the function reads, staged into the job dir (added to the RemoteInfo's input_files). */
  inputFiles?: readonly string[];
  /** Files (globs) the function writes in its working dir, brought back into this one (added to output_files). */
  outputFiles?: readonly string[];
}

export interface RemoteCallWrapper<A extends unknown[], R> {
  (...args: A): Promise<Awaited<R>>;
  (...args: [...A, RemoteCallOptions]): Promise<Awaited<R>>;
  /** The wrapped function itself. */
  readonly impl: (...args: A) => R;
  readonly callName: string;
  readonly remoteInfoEnv: string | undefined;
}

const say = (line: string) => process.stderr.write(`${line}\n`);

/** Variables of every remoteCall made in this process: a job's environment clears them (see above). */
const knownVariables = new Set<string>();

function filePath(file: string): string | undefined {
  if (file.startsWith('file:')) return fileURLToPath(file);
  return path.isAbsolute(file) ? file : undefined;
}

const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Wrap `fn` so that a call runs it here, or as one job when the variable `remoteInfoEnv` (or the
 * call's own `remoteCallOptions({ remoteInfo })`) says so. Export the result from a module: the job
 * imports it from there.
 */
export function remoteCall<A extends unknown[], R>(fn: (...args: A) => R, defaults: RemoteCallDefaults = {}): RemoteCallWrapper<A, R> {
  if (typeof fn !== 'function') throw new XprError(`remoteCall: expected a function, got ${typeof fn}`);
  const name = defaults.name ?? fn.name;
  if (!name) throw new XprError('remoteCall: the function has no name', { hint: "Pass { name: 'my_fit' } as the second argument." });
  const variable = defaults.remoteInfoEnv;
  if (variable !== undefined) {
    if (!VARIABLE_NAME.test(variable)) throw new XprError(`remoteCall ${name}: remoteInfoEnv "${variable}" is not a valid environment variable name`);
    knownVariables.add(variable);
  }
  const definedIn = callerFrame(remoteCall);
  const self = wrapperFrame(definedIn, name);
  const definingModule = definedIn ? filePath(definedIn.file) : undefined;

  const wrapper = async function remoteCalled(...all: unknown[]): Promise<unknown> {
    // Before any await: the caller's frames are only on the stack now.
    const frames = [...userFrames(remoteCalled), self];
    const site = callSite(remoteCalled);
    try {
      const { args, options } = splitCallArgs(all);
      const info = chooseInfo(options, frames);
      if (!info) return await (fn as (...a: unknown[]) => unknown)(...args);
      const ref = await locateWrapper();
      return await runAsJob({ name, variable, defaults, ref, wrapper: wrapper as never, info, args });
    } catch (err) {
      throw forUser(err, site);
    }
  };

  let located: Promise<FunctionRef> | undefined;
  /** Where the wrapper is exported, for the job to import it (cached). */
  const locateWrapper = (): Promise<FunctionRef> => {
    located ??= (async () => {
      try {
        if (!definingModule) throw new XprError('no module file');
        return await locateFunction(wrapper as never, { module: definingModule });
      } catch (err) {
        throw new XprError(`${name} cannot run as a job: the remoteCall wrapper is not exported by a module (found in ${definingModule ?? 'no file'})`, {
          hint: 'Define it as `export const name = remoteCall(fn, ...)` in a module that your script imports (not in the script itself).',
          cause: err,
        });
      }
    })();
    located.catch(() => { located = undefined; });
    return located;
  };

  /** The call's own RemoteInfo; else the variable's, matched against the call's frames; else none. */
  const chooseInfo = (options: RemoteCallOptions, frames: readonly StackFrame[]): RemoteInfo | undefined => {
    if (options.remoteInfo === null) return undefined;
    if (options.remoteInfo !== undefined) return RemoteInfo.from(options.remoteInfo as RemoteInfo | RemoteInfoFields);
    if (variable === undefined) return undefined;
    const expyre = loadExpyreInfo(process.env, process.cwd(), variable);
    if (!expyre) return undefined;
    const choice = chooseRemoteInfo(expyre, frames, options.remoteLabel);
    say(describeChoice(expyre, choice, frames, options.remoteLabel));
    return choice?.info;
  };

  Object.defineProperties(wrapper, {
    impl: { value: fn, enumerable: true },
    callName: { value: name, enumerable: true },
    remoteInfoEnv: { value: variable, enumerable: true },
  });
  return wrapper as unknown as RemoteCallWrapper<A, R>;
}

interface JobCall {
  name: string;
  variable: string | undefined;
  defaults: RemoteCallDefaults;
  ref: FunctionRef;
  wrapper: (...args: never[]) => unknown;
  info: RemoteInfo;
  args: unknown[];
}

/** The job's environment: other remoteCall variables cleared, then env_vars, and its own cleared. */
function jobEnv(info: RemoteInfo, own: string | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  for (const v of knownVariables) env[v] = '';
  Object.assign(env, info.env_vars);
  // The job runs this very call: with its own variable set it would only try to submit itself again.
  if (own !== undefined) env[own] = '';
  return env;
}

/** Run the call as one job (or re-attach to the identical earlier one), wait, and return its result. */
async function runAsJob(call: JobCall): Promise<unknown> {
  const { info, name } = call;
  const outputFiles = [...(call.defaults.outputFiles ?? []), ...info.output_files];
  const options: JobOptions = {
    name: info.job_name ?? name,
    fn: call.wrapper,
    module: call.ref.modulePath,
    exportName: call.ref.exportName,
    args: call.args,
    inputFiles: [...(call.defaults.inputFiles ?? []), ...info.input_files],
    outputFiles,
    preCmds: info.pre_cmds,
    postCmds: info.post_cmds,
    envVars: jobEnv(info, call.variable),
  };
  let job = await Job.create(options);
  if (job.reattached && info.resubmit_killed_jobs && (await job.sync()) === 'died') {
    say(`xpr ${name}: job ${job.id} died${job.info.remoteReason ? ` (${job.info.remoteReason})` : ''}; wiping it and submitting again`);
    await job.clean({ wipe: true });
    job = await Job.create(options);
  }
  await job.start({
    system: info.sys_name,
    resources: info.resources,
    headerExtra: info.header_extra,
    exactFit: info.exact_fit,
    ...(info.partial_node !== undefined ? { partialNode: info.partial_node } : {}),
  });
  say(`xpr ${name}: ${job.reattached ? 're-attached to' : 'submitted'} job ${job.id} on "${info.sys_name}"`);
  const { result, stdout, stderr } = await job.getResults({
    ...(Number.isFinite(info.timeout) ? { timeout: info.timeout } : {}),
    ...(info.check_interval !== undefined ? { checkInterval: info.check_interval } : {}),
  });
  if (stdout) process.stdout.write(stdout);
  if (stderr) process.stderr.write(stderr);
  if (outputFiles.length > 0) copyOutputFiles(job.stageDir, outputFiles, process.cwd());
  if (process.env[NO_MARK_PROCESSED_VAR] === undefined) job.markProcessed();
  return result;
}
