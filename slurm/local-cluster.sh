#!/usr/bin/env bash
# A single-node SLURM cluster on localhost (munged + slurmctld + slurmd) for the tests and for trying
# `--backend slurm` on one machine.  Usage:  slurm/local-cluster.sh start|stop|status
#
#   start   install slurmctld slurmd slurm-client munge with apt-get if any is missing, write
#           /etc/slurm/slurm.conf for this machine, start whatever daemon is not running, wait until
#           the node is idle. Idempotent: a second start only re-checks health.
#   stop    cancel all jobs, stop the three daemons (SIGTERM, SIGKILL after 15 s). Idempotent.
#   status  exit 0 and print `sinfo` if the cluster answers, exit 1 otherwise.
#
# Works without systemd and without cgroups (proctrack/linuxproc, task/none, no accounting): CI runners
# and containers. Needs root (re-runs itself with sudo). Tested on Debian 12 (Slurm 22.05, munge 0.5.15);
# what was needed and why: ../../shared/notes/slurm-local.md (pitfalls 1-9).
# Environment: SLURM_LOCAL_CPUS (default nproc), SLURM_LOCAL_MEM_MB (default 90% of RAM),
#              SLURM_LOCAL_PARTITION (default debug), SLURM_LOCAL_NO_INSTALL=1 (fail instead of apt-get).
set -euo pipefail

CMD=${1:-}
case "$CMD" in start|stop|status) ;; *) echo "usage: $0 start|stop|status" >&2; exit 2 ;; esac

if [ "$CMD" = status ]; then  # read-only: no root needed
  if command -v sinfo >/dev/null 2>&1 && timeout 10 scontrol ping 2>/dev/null | grep -q "is UP" \
     && sinfo -h -o %T 2>/dev/null | grep -Eq '^(idle|mixed|allocated|completing)'; then
    sinfo; exit 0
  fi
  echo "local SLURM cluster: not running"; exit 1
fi

if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "$0 $CMD: needs root (or sudo)" >&2; exit 1; }
  exec sudo -n -E bash "$0" "$@"
fi

NODE=localhost
CPUS=${SLURM_LOCAL_CPUS:-$(nproc)}
MEM_MB=${SLURM_LOCAL_MEM_MB:-$(awk '/MemTotal/{print int($2/1024*0.9)}' /proc/meminfo)}
PARTITION=${SLURM_LOCAL_PARTITION:-debug}
CONF=/etc/slurm/slurm.conf
STATE_DIR=/var/spool/slurmctld
SPOOL_DIR=/var/spool/slurmd
LOG_DIR=/var/log/slurm
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
MUNGE_PID=/run/munge/munged.pid

log() { echo "[local-cluster] $*"; }

pid_of() {  # pid_of PIDFILE COMM: print the pid if that process is alive and is COMM
  local pid
  [ -s "$1" ] || return 1
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] || return 1
  case "$(cat "/proc/$pid/comm")" in "$2"*) echo "$pid"; return 0 ;; esac
  return 1
}

wait_for() {  # wait_for SECONDS CMD...
  local end=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || return 1
    sleep 0.2
  done
}

stop_daemon() {  # stop_daemon NAME PIDFILE
  local pid
  if pid=$(pid_of "$2" "$1"); then
    log "stopping $1 (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    wait_for 15 sh -c "! [ -e /proc/$pid ]" || { log "$1 did not exit: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; }
  else
    log "$1 not running"
  fi
  rm -f "$2"
}

if [ "$CMD" = stop ]; then
  if pid_of "$CTLD_PID" slurmctld >/dev/null; then
    jobs=$(squeue -h -o %A 2>/dev/null | sort -u || true)
    if [ -n "$jobs" ]; then
      log "cancelling jobs: $(echo $jobs)"
      scancel $jobs 2>/dev/null || true
      wait_for 10 sh -c '[ -z "$(squeue -h -o %A 2>/dev/null)" ]' || true
    fi
  fi
  stop_daemon slurmd "$SLURMD_PID"
  stop_daemon slurmctld "$CTLD_PID"
  stop_daemon munged "$MUNGE_PID"
  exit 0
fi

# ------------------------------------------------------------------ start: packages
missing=0
for b in munged slurmctld slurmd sbatch sinfo srun; do command -v "$b" >/dev/null 2>&1 || missing=1; done
if [ $missing -eq 1 ]; then
  [ "${SLURM_LOCAL_NO_INSTALL:-0}" != 1 ] || { echo "SLURM/munge not installed (SLURM_LOCAL_NO_INSTALL=1)" >&2; exit 1; }
  command -v apt-get >/dev/null 2>&1 || { echo "SLURM not installed and no apt-get to install it" >&2; exit 1; }
  log "installing slurmctld slurmd slurm-client munge"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # (slurm-wlm would pull 43 packages; these four are all a single node needs)
  apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
fi

# ------------------------------------------------------------------ munge (no systemd: make its dirs)
install -d -o munge -g munge -m 0700 /etc/munge /var/log/munge
install -d -o munge -g munge -m 0711 /var/lib/munge
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  log "creating a munge key"
  mungekey --create --keyfile=/etc/munge/munge.key --force 2>/dev/null \
    || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  log "munged already running"
else
  rm -f "$MUNGE_PID" /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
  log "starting munged"
  runuser -u munge -- /usr/sbin/munged
  wait_for 10 sh -c 'munge -n | unmunge' || { echo "munged did not start; see /var/log/munge/munged.log" >&2; exit 1; }
fi

# ------------------------------------------------------------------ slurm.conf
install -d -m 0755 /etc/slurm "$SPOOL_DIR"
install -d -o slurm -g slurm -m 0755 "$STATE_DIR" "$LOG_DIR"
tmpconf=$(mktemp)
cat >"$tmpconf" <<CONF
# Written by slurm/local-cluster.sh: one node, no cgroups, no accounting.
ClusterName=localcluster
SlurmctldHost=localhost
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=$STATE_DIR
SlurmdSpoolDir=$SPOOL_DIR
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SchedulerType=sched/backfill
# the default batch_sched_delay=3 makes every wave of array tasks wait ~3 s
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# without it a job that asks no --mem gets the whole node's memory, so jobs run one at a time
DefMemPerCPU=$((MEM_MB / CPUS))
ReturnToService=2
SlurmdTimeout=60
MinJobAge=300
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
CONF
if ! cmp -s "$tmpconf" "$CONF"; then
  install -m 0644 "$tmpconf" "$CONF"
  log "wrote $CONF (CPUs=$CPUS RealMemory=${MEM_MB}M)"
  if pid_of "$CTLD_PID" slurmctld >/dev/null || pid_of "$SLURMD_PID" slurmd >/dev/null; then
    log "configuration changed: restarting the slurm daemons"
    stop_daemon slurmd "$SLURMD_PID"
    stop_daemon slurmctld "$CTLD_PID"
  fi
fi
rm -f "$tmpconf"

# ------------------------------------------------------------------ daemons
if pid=$(pid_of "$CTLD_PID" slurmctld); then log "slurmctld already running (pid $pid)"; else
  log "starting slurmctld"; /usr/sbin/slurmctld; fi
wait_for 30 sh -c 'scontrol ping | grep -q "is UP"' \
  || { echo "slurmctld does not answer; tail of $LOG_DIR/slurmctld.log:" >&2; tail -20 "$LOG_DIR/slurmctld.log" >&2; exit 1; }
if pid=$(pid_of "$SLURMD_PID" slurmd); then log "slurmd already running (pid $pid)"; else
  # -N: the node is `localhost` whatever the machine's hostname is
  log "starting slurmd"; /usr/sbin/slurmd -N "$NODE"; fi

node_ready() {
  case "$(sinfo -h -n "$NODE" -o %T 2>/dev/null | head -1)" in
    idle*|mixed*|allocated*|completing*) return 0 ;;
    down*|drain*|fail*) scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true; return 1 ;;
    *) return 1 ;;
  esac
}
wait_for 60 node_ready || { echo "node $NODE not ready:" >&2; sinfo >&2; tail -20 "$LOG_DIR/slurmd.log" >&2; exit 1; }
log "cluster up"
sinfo
