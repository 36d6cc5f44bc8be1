#!/usr/bin/env bash
# LLM cost table on a GPU machine without network, in bf16, on a model folder carried along.
#   bash bench/gpu_llm.sh MODEL_DIR [SENTENCES]
# MODEL_DIR: a local decoder folder (e.g. Mistral-7B-Instruct-v0.3 copied to disk); without it a
# tiny random Llama is built, which checks the pipeline but not real speed.  Needs BIONER_DATA_DIR
# (or ../shared/datasets) with BC5CDR.  Meant to finish in under 8 minutes on one H100/H200.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-}
N=${2:-500}
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())"
if [ -n "$MODEL" ]; then
  timeout 450 python bench/llm_cost.py --model "$MODEL" --sentences "$N" --dtype bfloat16 --batch-size 32
else
  timeout 450 python bench/llm_cost.py --sentences "$N" --dtype bfloat16 --batch-size 32
fi
# The comparison of bench/llm_accuracy.py on the GPU, when the carried folder holds the converted
# Gemma 3 270M ($BIONER_CACHE/models/gemma3-270m, about 1 GB): copy that cache beside the repo, set
# BIONER_CACHE to it there, and give a time budget that fits the lease, e.g.
#   BIONER_CACHE=$PWD/.cache GPU_COMPARISON=1 bash bench/gpu_llm.sh "" 200
if [ -n "${GPU_COMPARISON:-}" ]; then
  timeout 480 python bench/llm_accuracy.py --out runs/llm-bench-gpu --budget-minutes 3 --gen-budget-minutes 2 \
    --gen-train-limit 1000 --gen-test-limit 200 --epochs 3
fi
