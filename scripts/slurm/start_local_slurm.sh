#!/usr/bin/env bash
# Install and start a one-node SLURM with accounting on this machine (Debian 12, as root, no
# systemd): munge, MariaDB on loopback, slurmdbd, slurmctld, slurmd; partition "debug", cluster
# "local". Idempotent: a second run only starts what is not running, then waits until `sinfo`
# shows the node usable and `sacct` answers (the Snakemake SLURM executor polls sacct: without
# accounting it never sees a job finish).
#
#   sudo scripts/slurm/start_local_slurm.sh        # CI runs it through tests/cluster
#
# Environment: SLURM_MEM_MARGIN_MB (default 2048) is left to the OS out of the node's memory.
set -euo pipefail

log() { echo "start_local_slurm: $*" >&2; }
die() { log "$*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root"
command -v apt-get >/dev/null || command -v slurmctld >/dev/null || die "apt-get not available"

# wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND once a second until it succeeds
wait_for() {
    local secs=$1 what=$2
    shift 2
    for _ in $(seq "$secs"); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 1
    done
    die "timed out after ${secs}s waiting for $what"
}

running() { pgrep -x "$1" >/dev/null; }

# ---------------------------------------------------------------- packages
PKGS=(slurm-wlm slurm-client slurmdbd munge mariadb-server mariadb-client)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    # no init system here: keep the packages' maintainer scripts from starting services
    policy=/usr/sbin/policy-rc.d
    had_policy=0; [ -e "$policy" ] && had_policy=1
    [ "$had_policy" -eq 1 ] || { printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod 755 "$policy"; }
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
    [ "$had_policy" -eq 1 ] || rm -f "$policy"
fi

HOST=$(hostname)
NCPU=$(nproc)
MEM_MB=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
REAL_MB=$((MEM_MB - ${SLURM_MEM_MARGIN_MB:-2048}))
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/slurm

# ---------------------------------------------------------------- munge
if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    if command -v mungekey >/dev/null; then
        mungekey -c -f -k /etc/munge/munge.key
    else
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
fi
chown munge:munge /etc/munge/munge.key
chmod 400 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
if ! running munged; then
    log "starting munged"
    runuser -u munge -- munged --force </dev/null >/dev/null 2>&1 || munged --force </dev/null >/dev/null 2>&1
fi
wait_for 30 "munge" sh -c 'munge -n | unmunge'

# ---------------------------------------------------------------- MariaDB (loopback only)
mkdir -p /run/mysqld
chown mysql:mysql /run/mysqld
if [ ! -d /var/lib/mysql/mysql ]; then
    log "initialising the MariaDB data directory"
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null 2>&1 \
        || mysql_install_db --user=mysql --datadir=/var/lib/mysql >/dev/null
fi
if ! mysqladmin ping >/dev/null 2>&1; then
    log "starting MariaDB"
    setsid mysqld_safe --bind-address=127.0.0.1 </dev/null >/var/log/slurm/mysqld_safe.log 2>&1 &
fi
wait_for 60 "MariaDB" mysqladmin ping

# The database password is made once and kept in slurmdbd.conf (mode 600, root only).
DBD_CONF=/etc/slurm/slurmdbd.conf
if [ -f "$DBD_CONF" ] && grep -q '^StoragePass=' "$DBD_CONF"; then
    DBPASS=$(sed -n 's/^StoragePass=//p' "$DBD_CONF")
else
    DBPASS=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
fi
mysql -u root <<SQL
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '${DBPASS}';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '${DBPASS}';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
SQL

# ---------------------------------------------------------------- configuration
# write_conf PATH MODE: stdin to PATH if the content changed; prints "changed" then
write_conf() {
    local path=$1 mode=$2 tmp
    tmp=$(mktemp)
    cat >"$tmp"
    if [ -f "$path" ] && cmp -s "$tmp" "$path"; then
        rm -f "$tmp"
    else
        install -m "$mode" "$tmp" "$path"
        rm -f "$tmp"
        echo changed
    fi
}

dbd_changed=$(write_conf "$DBD_CONF" 600 <<EOF
# written by webbspec scripts/slurm/start_local_slurm.sh
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=${DBPASS}
StorageLoc=slurm_acct_db
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurm/slurmdbd.pid
EOF
)

conf_changed=$(write_conf /etc/slurm/slurm.conf 644 <<EOF
# written by webbspec scripts/slurm/start_local_slurm.sh
ClusterName=local
SlurmctldHost=${HOST}(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
SchedulerType=sched/backfill
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
MinJobAge=300
KillWait=10
InactiveLimit=0
NodeName=${HOST} NodeAddr=127.0.0.1 CPUs=${NCPU} RealMemory=${REAL_MB} State=UNKNOWN
PartitionName=debug Nodes=${HOST} Default=YES MaxTime=INFINITE State=UP
EOF
)

# ---------------------------------------------------------------- slurmdbd + cluster
if [ -n "$dbd_changed" ] && running slurmdbd; then
    log "slurmdbd.conf changed: restarting slurmdbd"
    pkill_pid=$(cat /run/slurm/slurmdbd.pid 2>/dev/null || true)
    [ -n "$pkill_pid" ] && kill "$pkill_pid" 2>/dev/null || true
    wait_for 30 "slurmdbd to stop" sh -c '! pgrep -x slurmdbd'
fi
if ! running slurmdbd; then
    log "starting slurmdbd"
    slurmdbd </dev/null >/dev/null 2>&1
fi
wait_for 60 "slurmdbd" sacctmgr -n list cluster
if ! sacctmgr -n -P list cluster format=cluster | grep -qx local; then
    sacctmgr -i add cluster local >/dev/null
fi

# ---------------------------------------------------------------- slurmctld + slurmd
if ! running slurmctld; then
    log "starting slurmctld"
    slurmctld </dev/null >/dev/null 2>&1
elif [ -n "$conf_changed" ]; then
    log "slurm.conf changed: reconfiguring"
    scontrol reconfigure || true
fi
wait_for 60 "slurmctld" scontrol ping
if ! running slurmd; then
    log "starting slurmd"
    slurmd </dev/null >/dev/null 2>&1
fi

node_state() { sinfo -h -n "$HOST" -o %T 2>/dev/null | head -n1; }
for _ in $(seq 60); do
    state=$(node_state)
    case "$state" in
        idle|mixed|allocated|completing) break ;;
        *drain*|down*) scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 1
done
state=$(node_state)
case "$state" in
    idle|mixed|allocated|completing) ;;
    *) die "node $HOST is '$state' (see /var/log/slurm/slurmd.log, slurmctld.log)" ;;
esac
# the controller registers with slurmdbd shortly after starting: wait until sacct answers
wait_for 60 "sacct" sh -c 'sacct -n -X -S now-1hours >/dev/null 2>/tmp/.sacct.err && ! grep -qi disabled /tmp/.sacct.err'
rm -f /tmp/.sacct.err
log "ready: $(sinfo -h -o '%P %D %T %c CPUs %m MB')"
