#!/usr/bin/env bash
# Checks the CUDA side on a machine with an NVIDIA GPU and writes a report to OUTDIR:
#   1. the fused cross-entropy CUDA kernel against its naive CPU reference (+ bandwidth);
#   2. the CUDA build of the addon (GGML_CUDA=ON + our .cu kernels) with CMake;
#   3. if Node.js is on PATH and the TypeScript is built (dist/), the CUDA addon's scores with all
#      layers on the GPU against the same addon on the CPU (scripts/cuda-compare.mjs), training on
#      the GPU against training on the CPU (scripts/cuda-train-check.mjs), and the GPU training
#      benchmark (bench/train-gpu.ts -> bench/results/train-gpu.json, copied to OUTDIR);
#   4. LoRA training of a Llama-3-8B-shaped model on the GPU, Q4_0 and F16: peak device memory
#      against 24 GiB, tokens/s beside GPU scoring (bench/train-memory-gpu.ts);
#   5. the roofline suite on the GPU (bench/roofline.ts: llama3-1b F16/Q8_0/Q4_0 against the same
#      llama.cpp tools -> OUTDIR/roofline-gpu.json);
#   6. then the Llama-3-8B-shaped benchmark (bench/gpu-8b.ts: F16 and Q4_0, our scorer and batched
#      generation against llama-bench and llama-batched-bench built from the same llama.cpp source
#      with the same EXTRA_CMAKE_ARGS, and 1,500 users' inference -> bench/results/gpu-8b.json,
#      copied to OUTDIR). It writes ~21 GB of model files under .cache/bench-models.
# Usage: scripts/cuda-check.sh OUTDIR
# Env: CUDA_ARCHITECTURES (default "native"), JOBS, BUILD_TIMEOUT (seconds, default none),
#      EXTRA_CMAKE_ARGS (e.g. "-DGGML_CUDA_FA=OFF" to skip llama.cpp's flash-attention kernels),
#      SECTIONS (comma-separated subset of ce,build,compare,train-check,train-gpu,train-memory-gpu,
#      roofline,gpu-8b; default all; a short booking of a GPU machine runs the ones it needs, e.g.
#      SECTIONS=build,train-memory-gpu), TRAIN_MEMORY_GPU_ARGS, ROOFLINE_ARGS and GPU_8B_ARGS (more flags for those
#      bench suites, e.g. GPU_8B_ARGS="--types Q4_0 --users 300"; `npm run bench -- gpu-8b --help`).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:?usage: scripts/cuda-check.sh OUTDIR}"
mkdir -p "$out"
arch="${CUDA_ARCHITECTURES:-native}"
jobs="${JOBS:-$(nproc)}"
llama="${LLAMA_CPP_DIR:-$PWD/.cache/llama.cpp}"
status=0
want() { [ -z "${SECTIONS:-}" ] || [[ ",$SECTIONS," == *",$1,"* ]]; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"

if want ce; then
echo "== fused CE kernel vs CPU reference"
if [ "$arch" = native ]; then nvarch=native; else nvarch="sm_${arch%%;*}"; fi
nvcc -O3 -std=c++17 -arch="$nvarch" -DMSR_REC_CUDA=1 -Inative/kernels \
  native/tests/fused_ce_cuda_test.cu native/kernels/fused_ce.cu native/kernels/fused_ce_cpu.cpp -o /tmp/fused_ce_cuda_test \
  && /tmp/fused_ce_cuda_test | tee "$out/fused_ce_cuda.txt" || status=1
fi

if want build; then
echo "== CUDA build of the addon"
nodeinc="$(ls -d node_modules/node-api-headers/include 2>/dev/null)"
start=$(date +%s)
cmake -S . -B build-cuda -DCMAKE_BUILD_TYPE=Release -DLLAMA_CPP_DIR="$llama" -DMSR_REC_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="$arch" -DCMAKE_JS_INC="$PWD/$nodeinc" -DNODE_ADDON_API_DIR="$PWD/node_modules/node-addon-api" \
  ${EXTRA_CMAKE_ARGS:-} > "$out/cuda-configure.log" 2>&1 \
  && timeout "${BUILD_TIMEOUT:-0}" cmake --build build-cuda -j "$jobs" > "$out/cuda-build.log" 2>&1 \
  && echo "built build-cuda/Release/msr_rec.node or build-cuda/msr_rec.node in $(( $(date +%s) - start )) s" | tee "$out/cuda-build.txt" \
  || { echo "CUDA build failed after $(( $(date +%s) - start )) s (see cuda-build.log)" | tee "$out/cuda-build.txt"; tail -30 "$out/cuda-build.log"; status=1; }
fi

if command -v node >/dev/null 2>&1 && [ -f dist/src/index.js ]; then
  addon="$(ls build-cuda/Release/msr_rec.node build-cuda/msr_rec.node 2>/dev/null | head -1)"
  [ -n "$addon" ] || { echo "no CUDA addon in build-cuda/: run the build section"; status=1; }
  if want compare; then
    echo "== CUDA scorer vs CPU"
    [ -n "$addon" ] && MSR_REC_ADDON="$PWD/$addon" node scripts/cuda-compare.mjs | tee "$out/cuda-compare.txt" || status=1
  fi
  if want train-check; then
    echo "== CUDA training vs CPU training"
    [ -n "$addon" ] && MSR_REC_ADDON="$PWD/$addon" node scripts/cuda-train-check.mjs | tee "$out/cuda-train-check.txt" || status=1
  fi
  if want train-gpu; then
    echo "== GPU training benchmark"
    [ -n "$addon" ] && MSR_REC_ADDON="$PWD/$addon" node dist/bench/run.js train-gpu | tee "$out/train-gpu.txt" \
      && cp bench/results/train-gpu.json "$out/" || status=1
  fi
  if want train-memory-gpu; then
    echo "== LoRA training memory of a Llama-3-8B-shaped model on the GPU (Q4_0, F16)"
    # shellcheck disable=SC2086 # the extra flags are meant to split into words
    [ -n "$addon" ] && MSR_REC_ADDON="$PWD/$addon" node dist/bench/run.js train-memory-gpu --threads "$jobs" ${TRAIN_MEMORY_GPU_ARGS:-} \
      | tee "$out/train-memory-gpu.txt" \
      && cp bench/results/train-memory-gpu.json "$out/" || status=1
  fi
  if want roofline; then
    echo "== llama3-1b shapes on the GPU: ours vs llama-bench / llama-batched-bench"
    # shellcheck disable=SC2086 # the extra flags are meant to split into words
    [ -n "$addon" ] && MSR_REC_ADDON="$PWD/$addon" node dist/bench/run.js roofline --threads "$jobs" \
      --llama-tools-cmake-args "-DCMAKE_CUDA_ARCHITECTURES=$arch ${EXTRA_CMAKE_ARGS:-}" ${ROOFLINE_ARGS:-} \
      | tee "$out/roofline.txt" \
      && cp bench/results/roofline.json "$out/roofline-gpu.json" || status=1
  fi
  if want gpu-8b; then
    echo "== Llama-3-8B-shaped model: ours vs llama-bench / llama-batched-bench, 1,500 users' inference"
    # shellcheck disable=SC2086 # the extra flags are meant to split into words
    [ -n "$addon" ] && MSR_REC_ADDON="$PWD/$addon" node dist/bench/run.js gpu-8b --threads "$jobs" \
      --llama-tools-cmake-args "-DCMAKE_CUDA_ARCHITECTURES=$arch ${EXTRA_CMAKE_ARGS:-}" ${GPU_8B_ARGS:-} \
      | tee "$out/gpu-8b.txt" \
      && cp bench/results/gpu-8b.json "$out/" || status=1
  fi
fi
exit $status
