# Shared by the bench scripts (sourced, not run).

# PostgreSQL's tools as their owner when the script runs as root (initdb
# refuses root).
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# The newest installed PostgreSQL's server binaries, or nothing.
pg_bin_dir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true; }

# build_ontab_at REV DIR: ontab's release binary as of commit REV, at
# DIR/ontab-base. Built in a git worktree (DIR/base-src, removed after)
# with its own target dir, target/compare-base, kept between runs.
# Run from the repository's root.
build_ontab_at() {
    local rev=$1 dir=$2 target
    target=$(pwd)/target/compare-base
    git worktree add --detach -q "$dir/base-src" "$rev"
    if ! (cd "$dir/base-src" && CARGO_TARGET_DIR=$target cargo build --release --locked -p ontab >&2); then
        git worktree remove --force "$dir/base-src"
        return 1
    fi
    cp "$target/release/ontab" "$dir/ontab-base"
    git worktree remove --force "$dir/base-src"
}

# start_throwaway_cluster DIR PORT [postgres -c settings...]
# initdb in DIR/data (trust auth, user postgres) and start it on
# 127.0.0.1:PORT with its socket in DIR; stop it with stop_throwaway_cluster.
start_throwaway_cluster() {
    local dir=$1 port=$2 bin
    shift 2
    bin=$(pg_bin_dir)
    [ -x "$bin/initdb" ] || { echo "needs PostgreSQL's server binaries (Debian package postgresql)" >&2; return 2; }
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth=trust >/dev/null
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200 $*" start >/dev/null
}

stop_throwaway_cluster() {
    local dir=$1
    [ -d "$dir/data" ] && as_pg "$(pg_bin_dir)/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
}

# The CPU time (clock ticks) a cluster has used so far: the postmaster's
# own, its live children's, and that of the children it has reaped
# (cutime, cstime), so backends that exited are counted too.
cluster_cpu_ticks() {
    local postmaster=$1 total=0 pid fields
    for pid in "$postmaster" $(pgrep -P "$postmaster"); do
        fields=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
        # shellcheck disable=SC2086
        set -- $fields
        total=$((total + ${12} + ${13}))
        [ "$pid" = "$postmaster" ] && total=$((total + ${14} + ${15}))
    done
    echo "$total"
}

# wait_ready BASE_URL SERVER_PID LOG SECONDS: until BASE_URL/readyz answers
# 200 (the server is up and its database migrated); prints LOG and fails if
# the server exits first or is not ready within SECONDS.
wait_ready() {
    local base=$1 pid=$2 log=$3 seconds=$4 _
    for _ in $(seq $((seconds * 10))); do
        curl -fsS -o /dev/null "$base/readyz" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    cat "$log" >&2
    return 1
}
