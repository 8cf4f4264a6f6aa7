#!/bin/sh
# OpenMPI's rsh/ssh launcher agent for the simulated nodes of cluster/simnodes.sh (OMPI_MCA_plm_rsh_agent): called as
# `simnodes-agent.sh [options] HOST COMMAND ...` like ssh, it runs COMMAND with sh inside HOST's network namespace, in
# a UTS namespace of its own whose host name is HOST (so every simulated node reports its own name).
# HOST is a node name (lorsn1) or its address (looked up in /etc/hosts).
while [ $# -gt 0 ]; do
    case $1 in
        -*) shift ;;   # ssh-style options (OpenMPI may pass -x)
        *) break ;;
    esac
done
[ $# -ge 2 ] || { echo "simnodes-agent.sh: usage: simnodes-agent.sh HOST COMMAND ..." >&2; exit 255; }
host=$1
shift
ns=$host
if ! ip netns list | awk '{print $1}' | grep -qx "$ns"; then
    ns=$(awk -v h="$host" '$1 == h && /# lors simnodes/ { print $2; exit }' /etc/hosts)
fi
if [ -z "$ns" ] || ! ip netns list | awk '{print $1}' | grep -qx "$ns"; then
    echo "simnodes-agent.sh: '$host' is not a simulated node (cluster/simnodes.sh up N creates ${LORS_SIMNODES_PREFIX:-lorsn}0..)" >&2
    exit 255
fi
exec ip netns exec "$ns" unshare --uts sh -c "hostname $ns && $*"
