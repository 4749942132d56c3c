#!/usr/bin/env bash
# A throwaway systemd for a test: PID 1 of new PID, mount, UTS and cgroup namespaces, so that a
# unit file can be started, reloaded and stopped for real without touching the host. The
# namespaces get their own /run, /tmp, /var/tmp and /var/lib (tmpfs), and cgroups below the
# caller's own; the network and the rest of the file system are the host's. Needs root.
#
#   systemd-sandbox.sh start DIR   boots it. DIR/run/ is copied into the namespaces' /run first
#                                  (unit files in DIR/run/systemd/system, what they need
#                                  elsewhere in DIR/run). Prints the host PID of its systemd.
#   systemd-sandbox.sh exec DIR COMMAND...   runs a command inside (systemctl, cat, ps).
#   systemd-sandbox.sh stop DIR    kills everything inside and removes its cgroups.
#
# systemd boots only sandbox.target (written here, with nothing in it): none of the host's
# units start, and nothing of the host's boot (tmpfiles, sysctl, udev) runs.
set -euo pipefail

command=${1:?usage: systemd-sandbox.sh start|exec|stop DIR ...}
dir=${2:?usage: systemd-sandbox.sh start|exec|stop DIR ...}
shift 2

fail() { echo "systemd-sandbox: $*" >&2; exit 1; }

# The mount point of the cgroup hierarchy named by a /proc/self/cgroup line's controllers.
hierarchy_mount() {
    local controllers=$1
    if [[ -z $controllers ]]; then
        findmnt -rn -t cgroup2 -o TARGET | head -1
        return
    fi
    findmnt -rn -t cgroup -o TARGET,FS-OPTIONS | while read -r target options; do
        if [[ ",$options," == *",$controllers,"* ]]; then
            echo "$target"
            break
        fi
    done
}

case $command in
start)
    [[ $(id -u) == 0 ]] || fail "needs root (it boots systemd in namespaces of its own)"
    [[ -x /lib/systemd/systemd ]] || fail "/lib/systemd/systemd is missing: apt-get install systemd"
    mkdir -p "$dir/run/systemd/system"
    printf '[Unit]\nDescription=A test sandbox\nDefaultDependencies=no\n' > "$dir/run/systemd/system/sandbox.target"
    # A cgroup of its own in every mounted hierarchy, below the caller's: systemd, which treats
    # the cgroup it starts in as its root, creates its slices there and nowhere else.
    name="roster-systemd-sandbox-$$"
    : > "$dir/cgroups"
    while IFS=: read -r _ controllers path; do
        mount_point=$(hierarchy_mount "$controllers")
        [[ -n $mount_point && -d $mount_point ]] || continue
        cgroup="$mount_point${path%/}/$name"
        mkdir "$cgroup"
        if [[ -f $cgroup/cpuset.cpus ]]; then
            cat "$(dirname "$cgroup")/cpuset.cpus" > "$cgroup/cpuset.cpus"
            cat "$(dirname "$cgroup")/cpuset.mems" > "$cgroup/cpuset.mems"
        fi
        echo "$cgroup" >> "$dir/cgroups"
    done < /proc/self/cgroup
    # Descriptors the caller let this script inherit must not live on in the sandbox: Foundation's
    # Process, for one, takes a socket's closing as its child's exit.
    for fd in /proc/$$/fd/*; do
        fd=${fd##*/}
        if (( fd > 2 )); then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    setsid bash -c '
        while read -r cgroup; do echo $$ > "$cgroup/cgroup.procs"; done < "$1/cgroups"
        exec unshare --cgroup --pid --fork --mount --mount-proc --uts --propagation private "$0" inside "$1"
    ' "$0" "$dir" > "$dir/systemd.log" 2>&1 < /dev/null &
    launcher=$!
    for _ in $(seq 200); do
        pid=$(pgrep -P "$launcher" 2>/dev/null | head -1 || true)
        if [[ -n $pid ]]; then
            state=$(nsenter -t "$pid" -a systemctl is-system-running 2>/dev/null || true)
            if [[ $state == running || $state == degraded ]]; then
                echo "$pid" > "$dir/pid"
                echo "$pid"
                exit 0
            fi
        fi
        sleep 0.1
    done
    cat "$dir/systemd.log" >&2
    [[ -n ${pid:-} ]] && echo "$pid" > "$dir/pid"
    kill -KILL "$launcher" 2>/dev/null || true
    "$0" stop "$dir"
    fail "systemd did not come up within 20 s"
    ;;
inside)
    # PID 1 of the new namespaces, until it execs systemd below.
    # The cgroup hierarchies as this cgroup namespace sees them: rooted at the sandbox's cgroups.
    findmnt -rn -t cgroup,cgroup2 -o TARGET,FSTYPE,FS-OPTIONS | while read -r target type options; do
        umount -l "$target"
        if [[ $type == cgroup2 ]]; then
            mount -t cgroup2 cgroup2 "$target"
        else
            options=$(echo "$options" | tr , '\n' | grep -v '^r[ow]$' | paste -sd,)
            [[ $options == name=* ]] && options="none,$options"
            mount -t cgroup -o "$options" cgroup "$target"
        fi
    done
    mount -t tmpfs -o mode=755 tmpfs /run
    cp -a "$dir/run/." /run/
    mount -t tmpfs -o mode=1777 tmpfs /tmp
    mount -t tmpfs -o mode=1777 tmpfs /var/tmp
    mount -t tmpfs -o mode=755 tmpfs /var/lib
    # Shared inside (never towards the host, which the namespace's mounts are private from):
    # systemd moves each service's credentials mount into place from a namespace of its own.
    mount --make-rshared /
    exec /lib/systemd/systemd --system --unit=sandbox.target
    ;;
exec)
    pid=$(cat "$dir/pid") || fail "not started"
    exec nsenter -t "$pid" -a "$@"
    ;;
stop)
    if [[ -f $dir/pid ]]; then
        pid=$(cat "$dir/pid")
        kill -KILL "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
        rm -f "$dir/pid"
    fi
    if [[ -f $dir/cgroups ]]; then
        while read -r cgroup; do
            for _ in $(seq 50); do
                [[ -d $cgroup ]] || break
                find "$cgroup" -depth -type d -exec rmdir {} + 2>/dev/null || true
                [[ -d $cgroup ]] && sleep 0.1
            done
        done < "$dir/cgroups"
        rm -f "$dir/cgroups"
    fi
    ;;
*)
    fail "unknown command $command"
    ;;
esac
