#!/usr/bin/env bash
# N -> M resume: a checkpoint written by 4 MPI ranks (ZeRO-1 off and on) resumes on 2 ranks and on 1 process,
# and training continues to the same parameters AND optimizer state as 4 ranks continuing, to 1e-5 relative.
#
# For dist.zero1 in {false, true}, with the real binaries on a tiny LORS ViT (synthetic data, global batch 16):
#   1. the reference: `lors train --np 4` straight to step 2K=6, writing checkpoints at K=3 (mid-epoch; 4 steps per
#      epoch) and at 6;
#   2. from its step-3 file (--resume PATH, separate work dirs) to step 6: `--np 4`, `--np 2`, and `lors train` in
#      one process (--threads 1, like every rank);
#   3. scripts/compare_checkpoints.py: the np 4 resume must equal the reference exactly (same rank layout, same sums;
#      this also catches a load bug common to every rank count), and the np 2 and np 1 resumes must be within 1e-5
#      relative (L2 per dataset, --rtol 1e-5) of it in every /model and /optimizer dataset.
# Before that, scripts/test_compare_checkpoints.py checks that the comparison itself fails when it should.
#
# Ranks differ only in the order of the gradient sums (each rank's GEMMs over its samples, then the all-reduce),
# i.e. in rounding. The model runs with model.vit.qkv_bias=false: the key part of the qkv bias has an exactly zero
# gradient (softmax ignores a per-query constant), so it receives only rounding noise, which AdamW normalises into
# lr-sized steps; its values are noise that differs between rank layouts by ~1e-3 relative even in runs that never
# checkpoint (np 1 vs np 4 straight), which says nothing about resuming. Every other tensor is compared.
#
#   bash cluster/test-resume-ranks.sh [--keep]     (needs lors, lors-worker of `swift build`, h5py; about 1 minute)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
me=test-resume-ranks.sh
keep=0; [ "${1:-}" = --keep ] && keep=1
bin=${LORS_BIN_DIR:-$(swift build --show-bin-path)}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
export OMPI_MCA_btl_vader_single_copy_mechanism=${OMPI_MCA_btl_vader_single_copy_mechanism:-none}
rtol=${LORS_RESUME_RTOL:-1e-5}
failures=()
fail() { echo "$me: FAILED $*" >&2; failures+=("$*"); }
pass() { echo "$me: PASSED $*"; }

for exe in "$bin/lors" "$bin/lors-worker"; do
    [ -x "$exe" ] || { echo "$me: FAILED: $exe not built (swift build)" >&2; exit 1; }
done
python3 -c "import h5py, numpy" 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check h5py numpy >/dev/null 2>&1

if python3 scripts/test_compare_checkpoints.py >/dev/null; then
    pass "scripts/test_compare_checkpoints.py (the comparison fails beyond --rtol, on NaN, missing datasets, shapes)"
else
    python3 scripts/test_compare_checkpoints.py >&2
    fail "scripts/test_compare_checkpoints.py"
fi

root=$(mktemp -d /tmp/lors-resume-ranks-XXXXXX)
config=configs/fmnist_vit_lors.yaml
K=3
final=step_$(printf %08d $((2 * K))).h5
common=(--set data.dataset=synthetic --set data.max_train_samples=64 --set data.max_test_samples=32
        --set train.batch_size=16 --set eval.test_batch_size=32 --set lr_schedule.warmup_iters=2
        --set model.vit.qkv_bias=false --set checkpoint.keep_last=10
        --set train.log_interval=1 --set log.console=false --set log.tensorboard=false)
train() { # NAME RANKS(1 = one process) ZERO1 MAX_STEPS RESUME [--set ...]
    local dir=$root/$1 ranks=(--np "$2") zero1=$3 steps=$4 resume=$5
    [ "$2" = 1 ] && ranks=(--threads 1)
    shift 5
    timeout --kill-after=10 300 "$bin/lors" train "$config" "${ranks[@]}" --work-dir "$dir" --resume "$resume" \
        "${common[@]}" --set dist.zero1="$zero1" --set train.max_steps="$steps" "$@" >"$dir.out" 2>&1
}

for zero1 in false true; do
    tag="zero1=$zero1"
    start=$root/ref_$zero1/checkpoints/step_$(printf %08d $K).h5
    reference=$root/ref_$zero1/checkpoints/$final
    if ! train "ref_$zero1" 4 "$zero1" $((2 * K)) none --set checkpoint.interval_steps=$K || [ ! -f "$start" ] || [ ! -f "$reference" ]; then
        fail "$tag: np 4 to step $((2 * K)) with a checkpoint at $K ($(tail -3 "$root/ref_$zero1.out" | tr '\n' '|'))"
        continue
    fi
    if ! python3 -c 'import h5py, sys; sys.exit(int(h5py.File(sys.argv[1], "r")["meta"].attrs["world_size"]) != 4)' "$start"; then
        fail "$tag: $start does not record world_size 4"
    fi
    for run in np4 np2 np1; do
        ranks=${run#np}
        if train "${run}_$zero1" $ranks "$zero1" $((2 * K)) "$start" && [ -f "$root/${run}_$zero1/checkpoints/$final" ] \
            && grep -q "resumed from $start: step $K" "$root/${run}_$zero1/log.txt"; then
            :
        else
            fail "$tag: $run ($ranks rank(s)) resumed from step $K to $((2 * K)) ($(tail -3 "$root/${run}_$zero1.out" | tr '\n' '|'))"
        fi
    done
    report=""
    if [ -f "$root/np4_$zero1/checkpoints/$final" ] \
        && report=$(python3 scripts/compare_checkpoints.py "$root/np4_$zero1/checkpoints/$final" "$reference" 2>&1); then
        pass "$tag: resumed on np 4 = straight np 4 run, exactly ($report)"
    else
        fail "$tag: resumed on np 4 differs from the straight np 4 run: ${report:-no result}"
    fi
    for run in np2 np1; do
        result=$root/${run}_$zero1/checkpoints/$final
        [ -f "$result" ] || continue
        if report=$(python3 scripts/compare_checkpoints.py "$result" "$reference" --rtol "$rtol" 2>&1); then
            pass "$tag: written by np 4, resumed on ${run#np} -> model + optimizer within $rtol of np 4 continuing ($report)"
        else
            fail "$tag: written by np 4, resumed on ${run#np}: $report"
        fi
    done
done

if [ "${#failures[@]}" -ne 0 ]; then
    echo "$me: ${#failures[@]} check(s) FAILED (work dirs kept in $root)" >&2
    exit 1
fi
[ "$keep" -eq 1 ] && echo "$me: work dirs kept in $root" || rm -rf "$root"
echo "$me: all checks passed"
