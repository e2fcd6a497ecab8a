#!/usr/bin/env bash
# The main job, end to end on a fresh machine:
#   set up .venv -> generate the bundled synthetic benchmark (once) ->
#   test the untrained model -> DMF pre-training (images + texts) ->
#   fine-tuning (images) -> fast-reid result tables, untrained vs trained.
# Every run writes to a new folder output/demo/<timestamp>/ (nothing is overwritten).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh
PY=.venv/bin/python
export FASTREID_DATASETS=${FASTREID_DATASETS:-datasets}
if [ ! -d "$FASTREID_DATASETS/FineGPR" ] || [ ! -d "$FASTREID_DATASETS/synth_market" ] || [ ! -d "$FASTREID_DATASETS/synth_msmt" ]; then
  "$PY" tools/make_demo_data.py --root "$FASTREID_DATASETS" --preset demo --seed 0
fi
RUN=${RUN_DIR:-output/demo/$(date +%Y%m%d-%H%M%S)}
start=$(date +%s)
"$PY" tools/train_net.py --config-file configs/demo/dmf_finetune.yml --eval-only \
  MODEL.WEIGHTS "" OUTPUT_DIR "$RUN/untrained"
"$PY" tools/train_net.py --config-file configs/demo/dmf_pretrain.yml OUTPUT_DIR "$RUN/pretrain"
"$PY" tools/train_net.py --config-file configs/demo/dmf_finetune.yml \
  MODEL.WEIGHTS "$RUN/pretrain/model_final.pth" OUTPUT_DIR "$RUN/finetune"
end=$(date +%s)
echo
echo "Untrained vs DMF (pre-trained on synthetic FineGPR images + texts, fine-tuned on SynthMarket images):"
"$PY" tools/compare_results.py "untrained=$RUN/untrained/results.json" \
  "DMF pre-train only=$RUN/pretrain/results.json" "DMF pre-train + fine-tune=$RUN/finetune/results.json" \
  | tee "$RUN/comparison.md"
echo "Training + testing took $((end - start)) s; outputs in $RUN"
