#!/bin/bash
# A whole MSR-Rec run on a Slurm cluster: each step is a job that starts when the one before it
# succeeded. Synthesis and inference are split over SHARDS array tasks; each split stage's merge
# is a small job of its own.
#   RUN_CONFIG=/shared/runs/ml100k/run.json SHARDS=8 GPUS=1 examples/slurm/submit.sh
#
# Variables [default]:
#   RUN_CONFIG   the run's JSON config, on storage every node sees [run.json]
#   SHARDS       array tasks of the synthesize and infer stages [8]
#   STOP_AFTER   the last stage to submit: prepare base synthesize sft train infer eval report [report]
#   GPUS         GPUs per stage job; 0 runs on CPUs only [0]
#   CPUS MEM TIME                     per stage job [8, 48G, 24:00:00]
#   MERGE_CPUS MERGE_MEM MERGE_TIME   per merge job, which only joins files [1, 4G, 02:00:00]
#   PARTITION ACCOUNT   passed as --partition / --account when set
#   SBATCH_EXTRA  more sbatch arguments for every job, e.g. "--qos=long --constraint=a100"
#   JOB_PREFIX    jobs are named PREFIX-STAGE, logs PREFIX-STAGE-JOB[_TASK].log [msr-rec]
#   LOG_DIR       the folder of the logs [the current one]
#   MSR_REC       the msr-rec command [msr-rec on PATH, else node_modules/.bin/msr-rec in or
#                 above the run's folder or this one, else this repository's dist]
#   DRY_RUN=1     print the sbatch commands instead of submitting them
#
# The arrays run `--shard auto/SHARDS`: array task i is shard i of SHARDS, also when it is
# resubmitted alone. A failed array task leaves the merge pending (DependencyNeverSatisfied); fix
# the cause and run examples/slurm/retry-shards.sh ARRAY_JOB MERGE_JOB, or see README.md in this
# folder for the other ways to recover.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
fail() { echo "submit.sh: $*" >&2; exit 2; }

shards=${SHARDS:-8}
gpus=${GPUS:-0}
prefix=${JOB_PREFIX:-msr-rec}
log_dir=${LOG_DIR:-.}
stop=${STOP_AFTER:-report}
[[ $shards =~ ^[1-9][0-9]*$ ]] || fail "SHARDS=$shards must be a positive integer"
[[ $gpus =~ ^[0-9]+$ ]] || fail "GPUS=$gpus must be a non-negative integer"
stages=(prepare base synthesize sft train rl infer eval report)
stop_at=-1
for i in "${!stages[@]}"; do [ "${stages[$i]}" = "$stop" ] && stop_at=$i; done
[ "$stop_at" -ge 0 ] || fail "STOP_AFTER=$stop is not a stage; use one of: ${stages[*]}"
runs() { local i; for i in "${!stages[@]}"; do [ "${stages[$i]}" = "$1" ] && [ "$i" -le "$stop_at" ] && return 0; done; return 1; }
upto() { # the last of the given stages that this run goes to
  local s last=""; for s in "$@"; do runs "$s" && last=$s; done; echo "$last"
}

[ -f "${RUN_CONFIG:-run.json}" ] || fail "RUN_CONFIG=${RUN_CONFIG:-run.json}: no such file (give the run's JSON config)"
RUN_CONFIG="$(cd "$(dirname "${RUN_CONFIG:-run.json}")" && pwd)/$(basename "${RUN_CONFIG:-run.json}")"
export RUN_CONFIG

# The command every job runs, found once here so that all jobs run the same msr-rec.
find_msr_rec() {
  [ -n "${MSR_REC:-}" ] && { echo "$MSR_REC"; return; }
  command -v msr-rec && return
  local d
  for d in "$(dirname "$RUN_CONFIG")" "$PWD"; do
    while :; do
      [ -x "$d/node_modules/.bin/msr-rec" ] && { echo "$d/node_modules/.bin/msr-rec"; return; }
      [ "$d" = / ] && break
      d=$(dirname "$d")
    done
  done
  local repo
  repo=$(cd "$here/../.." && pwd)
  [ -f "$repo/dist/src/cli/main.js" ] && { echo "$(command -v node) $repo/dist/src/cli/main.js"; return; }
  return 1
}
MSR_REC=$(find_msr_rec) || fail "cannot find msr-rec: set MSR_REC to its command (e.g. MSR_REC=\"node /path/to/msr-rec/dist/src/cli/main.js\"), put msr-rec on PATH (npm install -g msr-rec), or install it where the run is (npm install msr-rec)"
export MSR_REC

common=(--export=ALL --open-mode=append)
[ -n "${PARTITION:-}" ] && common+=(--partition="$PARTITION")
[ -n "${ACCOUNT:-}" ] && common+=(--account="$ACCOUNT")
read -r -a extra <<<"${SBATCH_EXTRA:-}"
stage_resources=(--cpus-per-task="${CPUS:-8}" --mem="${MEM:-48G}" --time="${TIME:-24:00:00}")
[ "$gpus" -gt 0 ] && stage_resources+=(--gres=gpu:"$gpus")
merge_resources=(--cpus-per-task="${MERGE_CPUS:-1}" --mem="${MERGE_MEM:-4G}" --time="${MERGE_TIME:-02:00:00}")
mkdir -p "$log_dir"

# submit NAME AFTER SBATCH_ARGS...: submits job PREFIX-NAME after job AFTER (none: "") and sets
# $job. If sbatch refuses one, the jobs already submitted are cancelled: no half-submitted run.
submitted=()
summary=""
submit() {
  local name=$prefix-$1 after=$2; shift 2
  local args=("${common[@]}" --job-name="$name")
  [ -n "$after" ] && args+=(--dependency=afterok:"$after" --kill-on-invalid-dep=no)
  case " $* " in *" --array="*) args+=(--output="$log_dir/%x-%A_%a.log") ;; *) args+=(--output="$log_dir/%x-%j.log") ;; esac
  args+=("${extra[@]}" "$@")
  if [ "${DRY_RUN:-0}" = 1 ]; then
    printf 'sbatch'; printf ' %q' "${args[@]}"; echo
    job="<$name>"
  elif ! job=$(sbatch --parsable "${args[@]}"); then
    echo "submit.sh: sbatch refused the $name job" >&2
    if [ ${#submitted[@]} -gt 0 ]; then
      echo "submit.sh: cancelling the jobs already submitted: ${submitted[*]}" >&2
      scancel "${submitted[@]}" || true
    fi
    exit 1
  fi
  job=${job%%;*}
  submitted+=("$job")
  summary+=$(printf '%-28s %s' "$name" "$job")$'\n'
}

submit "$(upto prepare base)" "" "${stage_resources[@]}" "$here/single.sbatch" "$(upto prepare base)"
if runs synthesize; then
  submit synthesize "$job" "${stage_resources[@]}" --array=0-$((shards - 1)) "$here/shards.sbatch" synthesize "auto/$shards"
  submit synthesize-merge "$job" "${merge_resources[@]}" "$here/merge.sbatch" synthesize
fi
if runs sft; then
  # The training job also runs the GRPO stage after it (rl; nothing when the config leaves it off).
  submit "$(upto sft train)" "$job" "${stage_resources[@]}" "$here/single.sbatch" "$(upto sft train rl)"
fi
if runs infer; then
  submit infer "$job" "${stage_resources[@]}" --array=0-$((shards - 1)) "$here/shards.sbatch" infer "auto/$shards"
  submit infer-merge "$job" "${merge_resources[@]}" "$here/merge.sbatch" infer
fi
if runs eval; then
  submit "$(upto eval report)" "$job" "${stage_resources[@]}" "$here/single.sbatch" "$(upto eval report)"
fi
echo "msr-rec: $MSR_REC"
echo "config:  $RUN_CONFIG"
printf '%s' "$summary"
