#!/usr/bin/env bash
# The README's main job: on a fresh Debian 12 machine, install what is missing, build in release mode, and train the
# LORS ViT on the real Fashion-MNIST data (Debian's dataset-fashion-mnist), then show the test accuracy and the logs.
#
#   bash cluster/quickstart.sh [extra lors train options, e.g. --set train.epochs=2]
#
# Environment: CONFIG (default configs/fmnist_vit_lors.yaml), WORK_DIR (default work_dirs/<config name>), NP (MPI ranks,
# default 2: data-parallel through mpirun and lors-worker, one BLAS thread per rank on a 2-core machine).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CONFIG=${CONFIG:-configs/fmnist_vit_lors.yaml}
name=$(basename "$CONFIG"); name=${name%.yaml}
WORK_DIR=${WORK_DIR:-work_dirs/$name}

bash cluster/setup.sh                      # installs missing packages, then swift build -c release
start=$(date +%s)
.build/release/lors train "$CONFIG" --np "${NP:-2}" --work-dir "$WORK_DIR" "$@"
end=$(date +%s)

# The last evaluation line of metrics.jsonl holds the final test accuracy.
last_eval=$(grep '"type":"eval"' "$WORK_DIR/metrics.jsonl" | tail -n 1)
top1=$(sed -n 's/.*"top1":\([0-9.eE+-]*\).*/\1/p' <<<"$last_eval")
top5=$(sed -n 's/.*"top5":\([0-9.eE+-]*\).*/\1/p' <<<"$last_eval")
echo
echo "quickstart: trained $CONFIG in $(( (end - start) / 60 ))m$(( (end - start) % 60 ))s"
awk -v a="$top1" -v b="$top5" 'BEGIN { printf "quickstart: Fashion-MNIST test top-1 %.2f%%, top-5 %.2f%%\n", 100 * a, 100 * b }'
echo "quickstart: logs in $WORK_DIR/ (log.txt, metrics.jsonl, tb/ for TensorBoard: tensorboard --logdir $WORK_DIR/tb)"
