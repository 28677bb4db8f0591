#!{{shell}}
{{header}}
# Job script written by xpr {{version}}; lines above come from the scheduler, the system and the job.
set -u
{{select_job_dir}}
cd -- "$job_dir" || { echo "xpr: cannot enter job dir $job_dir" >&2; exit 97; }
exec >>job.stdout 2>>job.stderr
rm -f _xpr_exit_code
date +%s > _xpr_started

export EXPYRE_NUM_NODES={{num_nodes}}
export EXPYRE_NUM_CORES={{num_cores}}
export EXPYRE_NUM_CORES_PER_NODE={{num_cores_per_node}}
{{env_vars}}
# system commands
{{commands}}
# job pre_cmds
{{pre_cmds}}
{{node_command}} --enable-source-maps {{runner}} > fn.stdout 2> fn.stderr
rc=$?
# job post_cmds
{{post_cmds}}
echo "$rc" > _xpr_exit_code.tmp && mv -f _xpr_exit_code.tmp _xpr_exit_code
exit "$rc"
