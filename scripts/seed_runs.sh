#!/usr/bin/env bash
# Trains each config once per seed (data-parallel, `lors train --np NP`) and prints the results table:
#
#   bash scripts/seed_runs.sh [CONFIG ...]        # default: the LORS and the vanilla Fashion-MNIST ViT
#
# Environment: SEEDS (default "0 1 2"), NP (default 2), OUT (default work_dirs/seeds). Each run goes to
# OUT/<config name>_seed<K>/ and its wall time (seconds, whole `lors train` command) to OUT/<...>/wall_seconds.
# Then scripts/seed_table.py prints mean, spread and the per-seed values, and scripts/plot_curves.py --group draws
# OUT/curves.png (matplotlib). Needs a release build (swift build -c release).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

configs=("$@")
[ "${#configs[@]}" -eq 0 ] && configs=(configs/fmnist_vit_lors.yaml configs/fmnist_vit.yaml)
SEEDS=${SEEDS:-0 1 2}
NP=${NP:-2}
OUT=${OUT:-work_dirs/seeds}
lors=.build/release/lors
[ -x "$lors" ] || { echo "seed_runs.sh: $lors not found; run swift build -c release first" >&2; exit 1; }

dirs=()
for config in "${configs[@]}"; do
    name=$(basename "$config" .yaml)
    for seed in $SEEDS; do
        dir="$OUT/${name}_seed$seed"
        rm -rf "$dir"
        mkdir -p "$dir"
        echo "seed_runs.sh: $config seed $seed (--np $NP) -> $dir"
        start=$(date +%s.%N)
        "$lors" train "$config" --np "$NP" --work-dir "$dir" --resume none --set "seed=$seed" --set log.console=false
        end=$(date +%s.%N)
        python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$start" "$end" >"$dir/wall_seconds"
        dirs+=("$dir")
    done
done
python3 scripts/seed_table.py "${dirs[@]}"
if python3 -c "import matplotlib" >/dev/null 2>&1; then
    python3 scripts/plot_curves.py "${dirs[@]}" --group --out "$OUT/curves.png"
fi
