#!/usr/bin/env bash
# Multi-node runs on simulated nodes (cluster/simnodes.sh: network namespaces on one machine, OpenMPI's rsh launcher,
# TCP between nodes, shared memory inside a node, one shared file system). Needs root, iproute2, h5py; about 1-2 min.
#
#   1. one process trains 5 SGD steps of the Fashion-MNIST LORS ViT (configs/fmnist_vit_lors.yaml, 256 samples,
#      global batch 16) = the reference;
#   2. `mpirun --host lorsn0:2,lorsn1:2 -np 4 lors-worker` trains the same 5 steps on 2 nodes x 2 ranks, writing
#      checkpoints at steps 3 and 5 from all four ranks into one parallel-HDF5 file each: the layout line must show
#      ranks 0,1 on lorsn0 and 2,3 on lorsn1 with local ranks 0,1 of 2 and the automatic threads of 2 ranks per node;
#      the step-5 file must record world_size 4, pass `lors inspect` and scripts/check_checkpoint.py, and its model and
#      optimizer state must be within 1e-5 (relative L2 per dataset, scripts/compare_checkpoints.py) of the reference;
#   3. the same 2 x 2 layout resumes from the step-3 file to step 5: bitwise equal to the straight run;
#   4. 2 nodes x 1 rank (automatic threads = all cores of the node, not cores / world size) train with a checkpoint
#      every 2 steps; the ranks of node lorsn1 are killed (SIGKILL): mpirun must end the whole job within 60 s with a
#      message naming the lost rank (1) and its node (lorsn1), and the newest checkpoint `latest` points to must pass
#      `lors inspect` and scripts/check_checkpoint.py.
#
#   bash cluster/test-multinode.sh [--keep]
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
me=test-multinode.sh
keep=0; [ "${1:-}" = --keep ] && keep=1
bin=${LORS_BIN_DIR:-$(swift build --show-bin-path)}
failures=()
fail() { echo "$me: FAILED $*" >&2; failures+=("$*"); }
pass() { echo "$me: PASSED $*"; }

[ "$(id -u)" -eq 0 ] || { echo "$me: FAILED: needs root (network namespaces)" >&2; exit 1; }
for exe in "$bin/lors" "$bin/lors-worker"; do
    [ -x "$exe" ] || { echo "$me: FAILED: $exe not built (swift build)" >&2; exit 1; }
done
python3 -c "import h5py, numpy" 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check h5py numpy >/dev/null 2>&1

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
export OMPI_MCA_btl_vader_single_copy_mechanism=${OMPI_MCA_btl_vader_single_copy_mechanism:-none}
unset LORS_NUM_THREADS
root=$(mktemp -d /tmp/lors-multinode-XXXXXX)
cleanup() {
    bash cluster/simnodes.sh down >/dev/null 2>&1
    if [ "${#failures[@]}" -eq 0 ] && [ "$keep" -eq 0 ]; then rm -rf "$root"; fi
}
trap cleanup EXIT
bash cluster/simnodes.sh up 2 || { echo "$me: FAILED: cluster/simnodes.sh up 2" >&2; exit 1; }
eval "$(bash cluster/simnodes.sh env)"

config=configs/fmnist_vit_lors.yaml
common=(--set data.dataset=fashion_mnist --set data.max_train_samples=256 --set data.max_test_samples=64
        --set train.batch_size=16 --set eval.test_batch_size=64 --set optimizer.type=sgd --set lr_schedule.warmup_iters=2
        --set model.vit.qkv_bias=false --set checkpoint.keep_last=10
        --set train.log_interval=1 --set log.console=false --set log.tensorboard=false)
step() { printf 'step_%08d.h5' "$1"; }
cores=$(nproc)
threads_for() { local t=$((cores / $1)); [ "$t" -ge 1 ] || t=1; echo "$t"; }
nodes_run() { # NAME HOSTLIST NP [lors-worker options ...]: mpirun on the simulated nodes, output in $root/NAME.out
    local name=$1 hosts=$2 np=$3
    shift 3
    timeout --kill-after=10 300 mpirun --allow-run-as-root --bind-to none --host "$hosts" -np "$np" "$bin/lors-worker" \
        --config "$config" --work-dir "$root/$name" "${common[@]}" "$@" >"$root/$name.out" 2>&1
}
world_size() { python3 -c 'import h5py, sys; print(int(h5py.File(sys.argv[1], "r")["meta"].attrs["world_size"]))' "$1" 2>/dev/null; }

# 1. The one-process reference.
if timeout --kill-after=10 300 "$bin/lors" train "$config" --threads 1 --work-dir "$root/one" --resume none \
        "${common[@]}" --set train.max_steps=5 >"$root/one.out" 2>&1 && [ -f "$root/one/checkpoints/$(step 5)" ]; then
    pass "one process, 5 SGD steps (reference)"
else
    fail "one-process reference run ($(tail -3 "$root/one.out" | tr '\n' '|'))"
fi

# 2. 2 nodes x 2 ranks, checkpoints at 3 and 5.
t2=$(threads_for 2)
if nodes_run nodes lorsn0:2,lorsn1:2 4 --resume none --set train.max_steps=5 --set checkpoint.interval_steps=3 \
        && [ -f "$root/nodes/checkpoints/$(step 3)" ] && [ -f "$root/nodes/checkpoints/$(step 5)" ]; then
    pass "2 nodes x 2 ranks, 5 steps, checkpoints at 3 and 5"
    expected="4 rank(s) on 2 node(s): lorsn0: ranks 0,1 (local 0,1 of 2), threads $t2,$t2; lorsn1: ranks 2,3 (local 0,1 of 2), threads $t2,$t2"
    if grep -qF "$expected" "$root/nodes.out"; then
        pass "node layout: $expected"
    else
        fail "node layout: expected '$expected', got '$(grep 'rank(s) on' "$root/nodes.out")'"
    fi
    ckpt=$root/nodes/checkpoints/$(step 5)
    [ "$(world_size "$ckpt")" = 4 ] || fail "$ckpt does not record world_size 4"
    if "$bin/lors" inspect "$ckpt" >/dev/null && python3 scripts/check_checkpoint.py "$ckpt" >/dev/null; then
        pass "the checkpoint written by 4 ranks on 2 nodes is intact (lors inspect, check_checkpoint.py)"
    else
        fail "the checkpoint written by 4 ranks on 2 nodes is damaged ($ckpt)"
    fi
    if [ -f "$root/one/checkpoints/$(step 5)" ] \
            && report=$(python3 scripts/compare_checkpoints.py "$ckpt" "$root/one/checkpoints/$(step 5)" --rtol 1e-5 2>&1); then
        pass "2 nodes x 2 ranks = one process within 1e-5 after 5 SGD steps ($report)"
    else
        fail "2 nodes x 2 ranks vs one process: ${report:-no reference}"
    fi
else
    fail "2 nodes x 2 ranks ($(tail -5 "$root/nodes.out" | tr '\n' '|'))"
fi

# 3. Resume from the step-3 file on the same layout: bitwise the straight run.
start=$root/nodes/checkpoints/$(step 3)
if [ -f "$start" ] && nodes_run resumed lorsn0:2,lorsn1:2 4 --resume "$start" --set train.max_steps=5 \
        && grep -q "resumed from $start: step 3" "$root/resumed/log.txt" \
        && report=$(python3 scripts/compare_checkpoints.py "$root/resumed/checkpoints/$(step 5)" "$root/nodes/checkpoints/$(step 5)" 2>&1); then
    pass "2 nodes x 2 ranks resumed from step 3 = the straight run, bitwise ($report)"
else
    fail "resume on 2 nodes x 2 ranks from step 3: ${report:-$(tail -3 "$root/resumed.out" | tr '\n' '|')}"
fi

# 4. A lost node: 2 nodes x 1 rank, the rank of lorsn1 killed after the step-2 checkpoint.
t1=$(threads_for 1)
[ "$t1" != "$(threads_for 2)" ] || echo "$me: note: $cores core(s): threads per rank do not tell node layout from world size here"
nodes_run lost lorsn0:1,lorsn1:1 2 --resume none --set train.max_steps=100000 --set checkpoint.interval_steps=2 &
job=$!
deadline=$((SECONDS + 120))
while [ ! -e "$root/lost/checkpoints/latest" ] && [ "$SECONDS" -lt "$deadline" ] && kill -0 "$job" 2>/dev/null; do sleep 0.5; done
sleep 1
victims=()
for pid in $(ip netns pids lorsn1 2>/dev/null); do
    # this job's ranks in that namespace (by command line: the process name of a Swift executable may read "exe")
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "lors-worker .*--work-dir $root/lost " && victims+=("$pid")
done
if [ ! -e "$root/lost/checkpoints/latest" ] || [ "${#victims[@]}" -eq 0 ]; then
    fail "lost node: no checkpoint or no rank on lorsn1 to kill ($(tail -3 "$root/lost.out" | tr '\n' '|'))"
    kill "$job" 2>/dev/null
    wait "$job" 2>/dev/null
else
    killed_at=$SECONDS
    kill -KILL "${victims[@]}"
    wait "$job"
    status=$?
    took=$((SECONDS - killed_at))
    layout="2 rank(s) on 2 node(s): lorsn0: ranks 0 (local 0 of 1), threads $t1; lorsn1: ranks 1 (local 0 of 1), threads $t1"
    if grep -qF "$layout" "$root/lost.out"; then
        pass "node layout: $layout (threads = cores / ranks on the node, not / world size)"
    else
        fail "node layout: expected '$layout', got '$(grep 'rank(s) on' "$root/lost.out")'"
    fi
    message=$(grep -E "rank 1 .*lorsn1|lorsn1.*rank 1" "$root/lost.out" | head -n 1)
    if [ "$status" -ne 0 ] && [ "$took" -le 60 ] && [ -n "$message" ]; then
        pass "killing lorsn1's rank ended the job in ${took}s (exit $status): $message"
    else
        fail "lost node: exit $status after ${took}s, message naming rank 1 and lorsn1: '${message}' ($(tail -5 "$root/lost.out" | tr '\n' '|'))"
    fi
    latest=$root/lost/checkpoints/$(cat "$root/lost/checkpoints/latest" 2>/dev/null)  # `latest` holds the file name
    if [ -f "$latest" ] && "$bin/lors" inspect "$latest" >/dev/null && python3 scripts/check_checkpoint.py "$latest" >/dev/null; then
        pass "after the lost node, the last complete checkpoint is intact: $(basename "$latest")"
    else
        fail "after the lost node, the last complete checkpoint ($latest) does not verify"
    fi
fi

if [ "${#failures[@]}" -ne 0 ]; then
    echo "$me: ${#failures[@]} check(s) FAILED (work dirs kept in $root)" >&2
    exit 1
fi
[ "$keep" -eq 1 ] && echo "$me: work dirs kept in $root"
echo "$me: all checks passed"
