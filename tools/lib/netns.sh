# shellcheck shell=bash
# Network-namespace helpers shared by the shaped benchmarks (sourced, not run):
# tools/bench-swarm-netns.sh and tools/bench-hybrid-netns.sh.
#
# A benchmark sets NETNS_PREFIX (namespaces ${NETNS_PREFIX}0.., veths ${NETNS_PREFIX}h<i> on the
# host side and ${NETNS_PREFIX}n<i> inside, bridge ${NETNS_PREFIX}br0) and NETNS_SUBNET (the
# first three octets; host i gets .(i+1)), calls netns_bridge once and netns_add per host, and
# netns_cleanup from its EXIT trap. Traffic stays on the bridge: nothing is routed off it.

# netns_shape DEV MBIT: a token bucket filter on DEV's egress.
netns_shape() { tc qdisc replace dev "$1" root tbf rate "${2}mbit" burst 256kb latency 100ms; }

# netns_ip I: the address of host I.
netns_ip() { echo "$NETNS_SUBNET.$(($1 + 1))"; }

# netns_bridge: creates the bridge.
netns_bridge() {
    ip link add "${NETNS_PREFIX}br0" type bridge
    ip link set "${NETNS_PREFIX}br0" up
}

# netns_add I UP_MBIT DOWN_MBIT: namespace ${NETNS_PREFIX}I on the bridge at netns_ip I, its
# upload shaped on the namespace side of its veth and its download on the host side.
netns_add() {
    local i="$1" up="$2" down="$3" ns="${NETNS_PREFIX}$1"
    ip netns add "$ns"
    ip link add "${NETNS_PREFIX}h$i" type veth peer name "${NETNS_PREFIX}n$i"
    ip link set "${NETNS_PREFIX}n$i" netns "$ns"
    ip link set "${NETNS_PREFIX}h$i" master "${NETNS_PREFIX}br0" up
    ip -n "$ns" addr add "$(netns_ip "$i")/24" dev "${NETNS_PREFIX}n$i"
    ip -n "$ns" link set "${NETNS_PREFIX}n$i" up
    ip -n "$ns" link set lo up
    ip netns exec "$ns" tc qdisc replace dev "${NETNS_PREFIX}n$i" root tbf rate "${up}mbit" burst 256kb latency 100ms
    netns_shape "${NETNS_PREFIX}h$i" "$down"
}

# netns_wait_tcp NS HOST PORT: waits (at most 10 s) until HOST:PORT accepts from inside NS.
netns_wait_tcp() {
    local _
    for _ in $(seq 1 200); do
        ip netns exec "$1" bash -c "exec 3<>/dev/tcp/$2/$3" 2> /dev/null && return 0
        sleep 0.05
    done
    return 1
}

# netns_cleanup LAST: removes veths, namespaces 0..LAST and the bridge. The veths are removed
# first: a namespace that some process still holds outlives `ip netns del`, and its veth with it.
netns_cleanup() {
    local i
    for i in $(seq 0 "$1"); do
        ip link del "${NETNS_PREFIX}h$i" 2> /dev/null || true
        ip netns del "${NETNS_PREFIX}$i" 2> /dev/null || true
    done
    ip link del "${NETNS_PREFIX}br0" 2> /dev/null || true
}
