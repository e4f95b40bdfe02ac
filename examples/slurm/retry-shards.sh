#!/bin/bash
# Reruns the failed tasks of a shard array and lets its merge go on, keeping the jobs that wait
# on the merge (train, infer, ...) in place. Fix what made the task fail, then:
#   examples/slurm/retry-shards.sh ARRAY_JOB MERGE_JOB        # the ids submit.sh printed
#
# What it does, and why, on Slurm 22.05:
# - `scontrol requeue ARRAY_TASK` for each failed task: the task runs again as the same index of
#   the same array, so `--shard auto` picks the same shard. (A new `sbatch --array=I ... auto/N`
#   does too, as a new job: see README.md.)
# - `scontrol update JobId=ARRAY_TASK StartTime=now`: a requeued job otherwise waits out Slurm's
#   requeue delay (about two minutes) first.
# - `scontrol update JobId=MERGE_JOB Dependency=afterok:ARRAY_0:ARRAY_1:...`: the merge's
#   `afterok:ARRAY` stays failed (DependencyNeverSatisfied) even after the task is requeued and
#   completes, because the array keeps its worst exit code; a dependency on the tasks one by one
#   is evaluated afresh.
# slurmctld forgets finished jobs MinJobAge seconds after they end (300 by default): later,
# resubmit the missing shard (`sbatch --array=I shards.sbatch STAGE auto/N`, or
# `sbatch shards.sbatch STAGE I/N` as a plain job) and point the merge at it with
# `scontrol update ... Dependency=` (README.md has the commands).
set -euo pipefail
array=${1:?usage: retry-shards.sh ARRAY_JOB MERGE_JOB}
merge=${2:?usage: retry-shards.sh ARRAY_JOB MERGE_JOB}

records=$(scontrol show job -o "$array" 2>&1) || {
  echo "retry-shards.sh: Slurm no longer knows job $array ($records)." >&2
  echo "Resubmit each missing shard as: sbatch examples/slurm/shards.sbatch STAGE I/N" >&2
  exit 1
}
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }

# Every task of the array: finished ones have a record each; pending ones share one whose
# ArrayTaskId is a list of ranges such as 4-7 or 1,3,5-9:2 (with %limit after it).
tasks=() failed=()
while IFS= read -r line; do
  [ "$(field ArrayJobId "$line")" = "$array" ] || continue
  ids=$(field ArrayTaskId "$line"); ids=${ids%%\%*}
  state=$(field JobState "$line")
  for part in ${ids//,/ }; do
    if [[ $part =~ ^([0-9]+)-([0-9]+)(:([0-9]+))?$ ]]; then
      for ((t = BASH_REMATCH[1]; t <= BASH_REMATCH[2]; t += ${BASH_REMATCH[4]:-1})); do tasks+=("$t"); done
    else
      tasks+=("$part")
      case "$state" in FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE|PREEMPTED) failed+=("$part") ;; esac
    fi
  done
done <<<"$records"
[ ${#tasks[@]} -gt 0 ] || { echo "retry-shards.sh: job $array is not a job array" >&2; exit 1; }
merge_state=$(field JobState "$(scontrol show job -o "$merge")")
[ "$merge_state" = PENDING ] || { echo "retry-shards.sh: merge job $merge is $merge_state, not PENDING; submit a new merge instead" >&2; exit 1; }

for t in "${failed[@]}"; do
  scontrol requeue "${array}_$t"
  scontrol update JobId="${array}_$t" StartTime=now
  echo "requeued task ${array}_$t"
done
mapfile -t sorted < <(printf '%s\n' "${tasks[@]}" | sort -n -u)
dependency="afterok$(printf ":${array}_%s" "${sorted[@]}")"
scontrol update JobId="$merge" Dependency="$dependency"
echo "merge job $merge now waits on $dependency"
