#!/bin/bash
# A whole MSR-Rec run on Kubernetes: prepare and base in one Job, the sharded stages as Indexed
# Jobs, each merge (and the stages after it) once the shards completed. Needs the PVC
# msr-rec-runs holding /runs/run.json, and for a paid teacher the secret msr-rec-teacher.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
step() { kubectl apply -f "$here/$1.yaml"; kubectl wait --for=condition=complete --timeout=48h "job/msr-rec-$1"; }

kubectl apply -f "$here/base.yaml" && kubectl wait --for=condition=complete --timeout=48h job/msr-rec-base
step synthesize-shards
step synthesize-merge   # also runs sft and train
step infer-shards
step infer-merge        # also runs eval and report
