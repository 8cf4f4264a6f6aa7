#!/usr/bin/env bash
# Cluster end-to-end checks of jobs and signals, on a real single-node Slurm (cluster/slurm-ci.sh) and under mpirun:
#   (a) a 2-task single-node.sbatch job trains: training lines in the job's OUTPUT FILE and a checkpoint;
#   (b) a requeue.sbatch job sent USR1 mid-training checkpoints, requeues itself, and its resumed run ends with the
#       same parameters as an uninterrupted run;
#   (c) SIGKILL of one task under srun ends the job (with a message), no hang;
#   (d) `lors train --np 2`: SIGTERM to the launcher mid-training -> checkpoint, exit 75 from every rank (mpirun
#       passes on the ranks' code), and the resumed run reaches the same parameters as an uninterrupted one.
# Needs root (Slurm), the debug build (lors, lors-worker; cluster/test.sh builds them) and h5py (installed if missing).
#   bash cluster/test-slurm.sh [--keep]     (--keep: leave Slurm running and the work dirs in place)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
me=test-slurm.sh
keep=0; [ "${1:-}" = --keep ] && keep=1
bin=${LORS_BIN_DIR:-$(swift build --show-bin-path)}
export LORS_WORKER=${LORS_WORKER:-$bin/lors-worker}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
export OMPI_MCA_btl_vader_single_copy_mechanism=${OMPI_MCA_btl_vader_single_copy_mechanism:-none}
failures=()
fail() { echo "$me: FAILED $*" >&2; failures+=("$*"); }
pass() { echo "$me: PASSED $*"; }

for exe in "$bin/lors" "$LORS_WORKER"; do
    if ! [ -x "$exe" ]; then
        echo "$me: FAILED: $exe not built (lors-worker comes with the data-parallel MPI work)" >&2
        exit 1
    fi
done
python3 -c "import h5py" 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check h5py >/dev/null 2>&1
root=$(mktemp -d /tmp/lors-slurm-XXXXXX)
chmod 755 "$root"
config=$root/tiny.yaml
cat > "$config" <<'YAML'
seed: 7
model:
  vit: {image_size: 16, in_channels: 1, patch_size: 4, num_classes: 4, embed_dim: 48, depth: 2, num_heads: 2}
data: {dataset: synthetic, max_train_samples: 128, max_test_samples: 32}
train: {batch_size: 16, epochs: 2, log_interval: 1}
optimizer: {lr: 0.003}
lr_schedule: {policy: cosine, warmup_iters: 2}
eval: {test_batch_size: 16}
checkpoint: {interval_steps: 4}
YAML
steps=12
latest() { local d=$1/checkpoints; [ -f "$d/latest" ] && echo "$d/$(cat "$d/latest")"; }
step_reached() { grep -o '"type":"train","step":[0-9]*' "$1/metrics.jsonl" 2>/dev/null | tail -1 | grep -o '[0-9]*$'; }
wait_step() { # WORK_DIR STEP TIMEOUT
    for _ in $(seq 1 $(($3 * 10))); do [ "$(step_reached "$1" || echo 0)" -ge "$2" ] 2>/dev/null && return 0; sleep 0.1; done
    return 1
}
job_state() { scontrol show job -o "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2; }
wait_job_gone() { # JOB TIMEOUT: until the job is no longer pending/running
    for _ in $(seq 1 "$2"); do
        case $(job_state "$1") in PENDING|RUNNING|CONFIGURING|COMPLETING|REQUEUED|SUSPENDED) sleep 1 ;; *) return 0 ;; esac
    done
    return 1
}

# The uninterrupted reference, on 2 MPI ranks like the runs it is compared with: N ranks equal one rank to
# rounding (MPI's summation order), and the same N ranks equal each other bitwise, which is what is checked here.
if timeout 300 "$bin/lors" train "$config" --np 2 --work-dir "$root/reference" --set train.max_steps=$steps \
        --set log.console=false && [ -n "$(latest "$root/reference")" ]; then
    pass "reference run ($(latest "$root/reference"))"
else
    fail "reference run"
fi

if ! bash cluster/slurm-ci.sh start; then
    fail "Slurm start"
else
    # (a) 2 tasks, output file, checkpoint.
    out=$root/a.out
    if timeout 300 sbatch --wait --ntasks=2 --cpus-per-task=1 --output="$out" cluster/single-node.sbatch "$config" "$root/a" \
            --set train.max_steps=6 >/dev/null \
        && grep -q "step 6 loss" "$out" && grep -q "2 rank(s)" "$out" && [ -f "$(latest "$root/a")" ]; then
        pass "(a) single-node.sbatch, 2 tasks: training lines in the output file, checkpoint $(latest "$root/a")"
    else
        fail "(a) single-node.sbatch (output file $out: $(tail -5 "$out" 2>/dev/null | tr '\n' '|'))"
    fi

    # (b) requeue on USR1, resume, same final parameters.
    out=$root/b.out
    job=$(sbatch --parsable --ntasks=2 --cpus-per-task=1 --output="$out" cluster/requeue.sbatch "$config" "$root/b" \
        --set train.max_steps=$steps)
    if wait_step "$root/b" 3 120; then
        scancel --batch --signal=USR1 "$job"
        # Slurm makes a requeued job eligible only ~2 min later (Reason=BeginTime); the test does not wait for that.
        # Wait until the requeued job is PENDING again (its first run and that run's srun step fully cleaned up:
        # starting it while slurmd still terminates the old step makes the new step's launch fail).
        for _ in $(seq 1 60); do
            scontrol show job -o "$job" 2>/dev/null | grep -q 'Restarts=[1-9].*JobState=PENDING\|JobState=PENDING.*Restarts=[1-9]' && break
            sleep 1
        done
        sleep 3
        scontrol update JobId="$job" StartTime=now 2>/dev/null || true
        wait_job_gone "$job" 240
    fi
    if grep -q "requeueing job" "$out" && grep -q "stop requested" "$out" && grep -qi "resum" "$out" \
        && [ "$(basename "$(latest "$root/b")")" = "step_$(printf %08d $steps).h5" ] \
        && python3 scripts/compare_checkpoints.py "$(latest "$root/reference")" "$(latest "$root/b")"; then
        pass "(b) requeue.sbatch: USR1 -> checkpoint -> requeued -> resumed to the reference parameters"
    else
        fail "(b) requeue.sbatch (job $job, output file $out: $(tail -8 "$out" 2>/dev/null | tr '\n' '|'))"
    fi

    # (c) SIGKILL of one task ends the job with a message, no hang.
    out=$root/c.out
    job=$(sbatch --parsable --ntasks=2 --cpus-per-task=1 --output="$out" cluster/single-node.sbatch "$config" "$root/c" \
        --set train.epochs=100)
    if wait_step "$root/c" 1 120; then
        victim=$(pgrep -f "^$LORS_WORKER --config $config --work-dir $root/c" | head -1)  # a task, not srun
        [ -n "$victim" ] && kill -KILL "$victim"
    fi
    if wait_job_gone "$job" 60 && grep -q "srun failed with status" "$out"; then
        pass "(c) SIGKILL of one task: job ended with a message ($(grep -m1 'srun failed' "$out"))"
    else
        fail "(c) SIGKILL of one task (job $job state $(job_state "$job"); output $(tail -5 "$out" 2>/dev/null | tr '\n' '|'))"
        scancel "$job" 2>/dev/null
    fi
    [ "$keep" -eq 1 ] || bash cluster/slurm-ci.sh stop
fi

# (d) lors train --np 2: SIGTERM to the launcher, exit 75, resume to the reference parameters.
"$bin/lors" train "$config" --np 2 --work-dir "$root/d" --set train.max_steps=$steps --set log.console=false \
    >"$root/d.out" 2>&1 &
launcher=$!
status=-1
if wait_step "$root/d" 3 120; then
    kill -TERM "$launcher"
    wait "$launcher"; status=$?
else
    kill -KILL "$launcher" 2>/dev/null
fi
if [ "$status" -eq 75 ] && grep -q "stop requested by SIGUSR1 on 2 of 2 rank(s)" "$root/d/log.txt" && [ -f "$(latest "$root/d")" ] \
    && timeout 300 "$bin/lors" train "$config" --np 2 --work-dir "$root/d" --set train.max_steps=$steps \
        --set log.console=false >>"$root/d.out" 2>&1 \
    && python3 scripts/compare_checkpoints.py "$(latest "$root/reference")" "$(latest "$root/d")"; then
    pass "(d) lors train --np 2: SIGTERM -> checkpoint, exit 75 on every rank, resume = reference"
else
    fail "(d) lors train --np 2 (launcher exit $status; $root/d.out: $(tail -5 "$root/d.out" | tr '\n' '|'))"
fi

if [ "${#failures[@]}" -ne 0 ]; then
    echo "$me: ${#failures[@]} check(s) FAILED (work dirs kept in $root)" >&2
    exit 1
fi
[ "$keep" -eq 1 ] || rm -rf "$root"
echo "$me: all checks passed"
