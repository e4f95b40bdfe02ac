#!/bin/bash
# A whole MSR-Rec run on a Slurm cluster: each step is a job that starts when the one before it
# succeeded. Synthesis and inference are split over SHARDS array tasks (one GPU each).
#   RUN_CONFIG=/shared/runs/ml100k/run.json SHARDS=8 examples/slurm/submit.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
shards="${SHARDS:-8}"
export RUN_CONFIG="${RUN_CONFIG:-run.json}"

prep=$(sbatch --parsable --export=ALL "$here/single.sbatch" base)
synth=$(sbatch --parsable --export=ALL --dependency=afterok:"$prep" --array=0-$((shards - 1)) "$here/shards.sbatch" synthesize)
synth_merged=$(sbatch --parsable --export=ALL --dependency=afterok:"$synth" "$here/merge.sbatch" synthesize)
train=$(sbatch --parsable --export=ALL --dependency=afterok:"$synth_merged" "$here/single.sbatch" train)
infer=$(sbatch --parsable --export=ALL --dependency=afterok:"$train" --array=0-$((shards - 1)) "$here/shards.sbatch" infer)
final=$(sbatch --parsable --export=ALL,STOP_AFTER=report --dependency=afterok:"$infer" "$here/merge.sbatch" infer)
echo "submitted: base $prep, synthesize $synth (+ merge $synth_merged), train $train, infer $infer (+ merge, eval, report $final)"
