#!/usr/bin/env bash
# A real single-node Slurm for CI and tests, without systemd. Needs root.
#
#   bash cluster/slurm-ci.sh start   # install slurmctld slurmd slurm-client munge if missing, write
#                                    # /etc/slurm/slurm.conf, start munged, slurmctld, slurmd; wait until the node is idle
#   bash cluster/slurm-ci.sh stop    # scontrol shutdown, wait for the daemons, stop munged
set -euo pipefail
me=slurm-ci.sh
[ "$(id -u)" -eq 0 ] || { echo "$me: needs root" >&2; exit 1; }

start() {
    local missing=()
    for p in slurmctld slurmd slurm-client munge; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "$me: installing ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null \
            || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
    fi
    if [ "$(sinfo -h -o %T 2>/dev/null | head -1)" = idle ]; then echo "$me: Slurm already up (node idle)"; return 0; fi
    local host cpus mem
    host=$(hostname -s)
    cpus=$(nproc)
    mem=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
    mkdir -p /etc/slurm /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm
    cat > /etc/slurm/slurm.conf <<CONF
ClusterName=ci
SlurmctldHost=${host}(127.0.0.1)
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=pmix
ReturnToService=2
MailProg=/bin/true
MinJobAge=5
KillWait=10
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
    mkdir -p /run/munge && chown munge:munge /run/munge
    pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged
    pgrep -x slurmctld >/dev/null || slurmctld
    pgrep -x slurmd >/dev/null || slurmd
    for _ in $(seq 1 60); do
        state=$(sinfo -h -o %T 2>/dev/null | head -1 || true)
        case $state in
            idle) echo "$me: Slurm up, node $host idle ($cpus CPUs, ${mem} MB)"; return 0 ;;
            drain*|down*) scontrol update NodeName="$host" State=RESUME 2>/dev/null || true ;;
        esac
        sleep 1
    done
    echo "$me: the node did not become idle (state '${state:-?}'); see /var/log/slurm/" >&2
    return 1
}

stop() {
    scontrol shutdown 2>/dev/null || true
    for pidfile in /run/slurmctld.pid /run/slurmd.pid; do
        if [ -f "$pidfile" ]; then
            pid=$(cat "$pidfile")
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        fi
    done
    [ -x /usr/sbin/munged ] && /usr/sbin/munged --stop 2>/dev/null || runuser -u munge -- /usr/sbin/munged --stop 2>/dev/null || true
    echo "$me: Slurm stopped"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $me start|stop" >&2; exit 2 ;;
esac
