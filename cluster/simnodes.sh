#!/usr/bin/env bash
# Simulated cluster nodes on one machine (root): N network namespaces, each a "host" with its own address and name,
# joined by veth pairs to one bridge, optionally with a bandwidth limit per link; OpenMPI starts remote ranks in them
# through its rsh launcher (cluster/simnodes-agent.sh runs `ip netns exec` instead of ssh).
#
#   cluster/simnodes.sh up N [--link-gbit G]     create nodes lorsn0..lorsn{N-1} (10.231.0.1.. on bridge lorsbr,
#                                                  /etc/hosts entries); G > 0 limits every link to G Gbit/s each way
#   cluster/simnodes.sh limit G                   change the limit of the existing nodes (0 = none)
#   cluster/simnodes.sh down                      remove every node, the bridge and the /etc/hosts entries
#   cluster/simnodes.sh env                       print the OpenMPI settings (export lines) for mpirun
#   cluster/simnodes.sh run N [--link-gbit G] -- COMMAND ...
#                                                 up, run COMMAND with those settings exported, down (also on error
#                                                 and on SIGINT/SIGTERM); exits with COMMAND's status
#
# With the settings of `env`, `mpirun --host lorsn0:2,lorsn1:2 ...` runs 2 ranks on each simulated node: mpirun stays
# in the root namespace (address 10.231.0.254 on the bridge), its daemons (orted) start in the namespaces and call
# back over TCP; ranks on one node talk through shared memory (vader), ranks on different nodes through TCP over the
# veth links only (oob/btl restricted to 10.231.0.0/24). Every node sees the same file system (it plays the shared file
# system of a cluster) and its own host name (a UTS namespace per daemon, set by the agent).
#
# Limits: bandwidth is shaped with tc tbf on both ends of each veth (node -> bridge and bridge -> node); latency cannot
# be added (this kernel has no netem), so the links have the sub-millisecond latency of veth. All nodes share the
# machine's cores and memory bandwidth: compute does not scale with the node count, only the network is separated.
set -euo pipefail
me=simnodes.sh
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PREFIX=${LORS_SIMNODES_PREFIX:-lorsn}
BRIDGE=${LORS_SIMNODES_BRIDGE:-lorsbr}
SUBNET=${LORS_SIMNODES_SUBNET:-10.231.0}   # /24; nodes .1 .., the bridge (root namespace) .254
HOSTS_TAG="# lors simnodes"

die() { echo "$me: $*" >&2; exit 1; }
need_root() { [ "$(id -u)" -eq 0 ] || die "must run as root (network namespaces, tc)"; }
command -v ip >/dev/null 2>&1 || die "'ip' not found: install iproute2"

nodes() { ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${PREFIX}[0-9]+$" | sort -V || true; }

# tbf on one device (run with an optional "ip netns exec NS" prefix): rate G Gbit/s, a burst of ~2 ms of traffic.
shape() { # GBIT DEV [NS]
    local gbit=$1 dev=$2 ns=${3:-} run=()
    [ -n "$ns" ] && run=(ip netns exec "$ns")
    "${run[@]}" tc qdisc del dev "$dev" root 2>/dev/null || true
    if awk -v g="$gbit" 'BEGIN { exit !(g > 0) }'; then
        local kbit burst
        kbit=$(awk -v g="$gbit" 'BEGIN { printf "%d", g * 1000000 }')
        burst=$(awk -v k="$kbit" 'BEGIN { b = k * 1000 / 8 * 0.002; if (b < 65536) b = 65536; printf "%d", b }')
        "${run[@]}" tc qdisc add dev "$dev" root tbf rate "${kbit}kbit" burst "$burst" latency 200ms \
            || die "tc tbf on $dev${ns:+ in $ns} failed"
    fi
}

limit() { # GBIT
    local gbit=$1 ns i
    [[ "$gbit" =~ ^[0-9]*\.?[0-9]+$ ]] || die "link limit '$gbit' is not a number of Gbit/s (0 = none)"
    for ns in $(nodes); do
        i=${ns#"$PREFIX"}
        shape "$gbit" e0 "$ns"
        shape "$gbit" "v$PREFIX$i"
    done
}

down() {
    local ns i
    for ns in $(nodes); do
        i=${ns#"$PREFIX"}
        ip link del "v$PREFIX$i" 2>/dev/null || true
        ip netns del "$ns" 2>/dev/null || true
    done
    ip link del "$BRIDGE" 2>/dev/null || true
    if grep -q "$HOSTS_TAG" /etc/hosts 2>/dev/null; then
        # /etc/hosts may be a bind mount: rewrite it in place rather than replacing the file.
        local kept
        kept=$(grep -v "$HOSTS_TAG" /etc/hosts)
        printf '%s\n' "$kept" >/etc/hosts
    fi
}

up() { # N GBIT
    local n=$1 gbit=$2 i ns
    [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 200 ] || die "node count '$n' must be 1..200"
    down
    ip link add "$BRIDGE" type bridge || die "cannot create bridge $BRIDGE"
    ip addr add "$SUBNET.254/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    for ((i = 0; i < n; i++)); do
        ns=$PREFIX$i
        ip netns add "$ns"
        ip link add "v$ns" type veth peer name e0 netns "$ns"
        ip link set "v$ns" master "$BRIDGE"
        ip link set "v$ns" up
        ip -n "$ns" addr add "$SUBNET.$((i + 1))/24" dev e0
        ip -n "$ns" link set e0 up
        ip -n "$ns" link set lo up
        ip -n "$ns" route add default via "$SUBNET.254" 2>/dev/null || true
        printf '%s %s %s\n' "$SUBNET.$((i + 1))" "$ns" "$HOSTS_TAG" >>/etc/hosts
    done
    limit "$gbit"
    echo "$me: $n node(s) up: $(nodes | tr '\n' ' ')(bridge $BRIDGE $SUBNET.254/24, link limit ${gbit} Gbit/s, 0 = none)"
}

print_env() {
    cat <<EOF
export OMPI_MCA_plm_rsh_agent=$here/simnodes-agent.sh
export OMPI_MCA_oob_tcp_if_include=$SUBNET.0/24
export OMPI_MCA_btl_tcp_if_include=$SUBNET.0/24
export OMPI_MCA_btl=self,vader,tcp
export OMPI_MCA_plm_rsh_assume_same_shell=1
export OMPI_MCA_orte_keep_fqdn_hostnames=1
export LORS_SIMNODES_PREFIX=$PREFIX
EOF
}

parse_gbit() { # sets gbit from "--link-gbit G" in "$@"
    gbit=0
    while [ $# -gt 0 ]; do
        case $1 in
            --link-gbit) [ $# -ge 2 ] || die "--link-gbit needs a value"; gbit=$2; shift 2 ;;
            --) break ;;
            *) die "unknown option '$1'" ;;
        esac
    done
}

cmd=${1:-}
shift || true
case $cmd in
    up)
        need_root
        [ $# -ge 1 ] || die "usage: $me up N [--link-gbit G]"
        n=$1; shift
        parse_gbit "$@"
        up "$n" "$gbit" ;;
    down)
        need_root
        down
        echo "$me: all simulated nodes removed" ;;
    limit)
        need_root
        [ $# -eq 1 ] || die "usage: $me limit GBIT"
        [ -n "$(nodes)" ] || die "no simulated nodes are up"
        limit "$1"
        echo "$me: link limit ${1} Gbit/s on $(nodes | tr '\n' ' ')" ;;
    env)
        print_env ;;
    run)
        need_root
        [ $# -ge 1 ] || die "usage: $me run N [--link-gbit G] -- COMMAND ..."
        n=$1; shift
        rest=()
        while [ $# -gt 0 ] && [ "$1" != -- ]; do rest+=("$1"); shift; done
        [ "${1:-}" = -- ] || die "usage: $me run N [--link-gbit G] -- COMMAND ..."
        shift
        [ $# -ge 1 ] || die "run: no command after --"
        parse_gbit "${rest[@]+"${rest[@]}"}"
        trap 'down' EXIT
        trap 'exit 130' INT
        trap 'exit 143' TERM
        up "$n" "$gbit"
        eval "$(print_env)"
        status=0
        "$@" || status=$?
        exit "$status" ;;
    *)
        awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
        [ -z "$cmd" ] || [ "$cmd" = -h ] || [ "$cmd" = --help ] || exit 2 ;;
esac
