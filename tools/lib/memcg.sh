# shellcheck shell=bash
# Memory-cgroup helpers for the cold-data benchmarks (sourced, not run):
# tools/bench-relay-http.sh --cold and tools/bench-bt-cold.sh. Root only.
#
# memcg_create MEM_MIB makes a cgroup (v2 `memory.max`, or v1 `memory.limit_in_bytes`) and sets
# $cgroup; `in_cgroup CMD... &` runs CMD inside it; memcg_cleanup (from the EXIT trap) kills what
# is left in it and removes it; drop_caches empties the page cache.

cgroup=""

# memcg_create MEM_MIB: a memory cgroup of MEM_MIB MiB in $cgroup.
memcg_create() {
    local bytes=$(($1 * 1024 * 1024))
    [ "$(id -u)" = 0 ] || { echo "cold data needs root (cgroup, drop_caches)" >&2; return 1; }
    if [ -f /sys/fs/cgroup/cgroup.controllers ] && grep -qw memory /sys/fs/cgroup/cgroup.controllers; then
        cgroup="/sys/fs/cgroup/fg-bench-$$"
        mkdir "$cgroup"
        echo "$bytes" > "$cgroup/memory.max"
    elif [ -d /sys/fs/cgroup/memory ]; then
        cgroup="/sys/fs/cgroup/memory/fg-bench-$$"
        mkdir "$cgroup"
        echo "$bytes" > "$cgroup/memory.limit_in_bytes"
    else
        echo "no memory cgroup controller (v2 or v1) under /sys/fs/cgroup" >&2
        return 1
    fi
}

# memcg_cleanup: anything still in the cgroup was started by the benchmark; kill it, remove it.
memcg_cleanup() {
    [ -n "$cgroup" ] || return 0
    for p in $(cat "$cgroup/cgroup.procs" 2> /dev/null); do kill "$p" 2> /dev/null || true; done
    for _ in $(seq 1 50); do [ -s "$cgroup/cgroup.procs" ] || break; sleep 0.1; done
    rmdir "$cgroup" 2> /dev/null || echo "could not remove $cgroup" >&2
}

# in_cgroup CMD...: only in a background subshell (`in_cgroup CMD... &`): it execs, so `$!` is
# CMD's pid. Without a cgroup it just runs CMD.
in_cgroup() {
    if [ -n "$cgroup" ]; then
        exec sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$cgroup" "$@"
    else
        exec "$@"
    fi
}

# drop_caches: writes dirty pages back, then drops the whole page cache.
drop_caches() {
    sync
    echo 3 > /proc/sys/vm/drop_caches
}
