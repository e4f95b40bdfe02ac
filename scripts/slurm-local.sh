#!/usr/bin/env bash
# A one-node Slurm cluster on localhost, for trying the job scripts in examples/slurm/ and for
# the tests that submit them:
#   scripts/slurm-local.sh start  DIR   # install slurm-wlm + munge if missing, start the daemons
#   scripts/slurm-local.sh status DIR
#   scripts/slurm-local.sh stop   DIR   # cancel its jobs, stop exactly the daemons it started
#   export SLURM_CONF=DIR/etc/slurm.conf   # then sbatch, squeue, scontrol talk to it
#
# Everything lives in DIR: slurm.conf, the munge key and socket, state, spool, logs, pid files.
# Nothing system-wide changes besides installing the Debian packages. The configuration suits a
# container without systemd or cgroup delegation: processes are tracked through /proc
# (proctrack/linuxproc), tasks are not bound (task/none), there is no accounting database, and
# finished jobs stay visible to `scontrol show job` for an hour (MinJobAge) so their final state
# can be read without sacct.
#
# Environment:
#   SLURM_LOCAL_FAKE_GPUS  GPUs the node advertises (default 1), with no device behind them, so
#                          that scripts asking for --gres=gpu:N can be scheduled; CPU-only jobs
#                          are not affected. 0 advertises none.
#   SLURM_LOCAL_PORT       slurmctld's port (slurmd takes the next); default: two free ones.
#
# Exit status: 0 ok, 2 usage, 3 the packages cannot be installed, 4 a daemon did not start.
set -euo pipefail

usage() { echo "usage: $0 start|stop|status DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
action=$1
if [ "$action" = start ]; then mkdir -p "$2"; fi
if [ ! -d "$2" ]; then echo "slurm-local: no cluster in $2 (no such folder)" >&2; [ "$action" = stop ]; exit; fi
dir=$(cd "$2" && pwd)
conf=$dir/etc/slurm.conf
socket=$dir/munge/munge.socket
node=$(hostname -s)
export SLURM_CONF=$conf

say() { echo "slurm-local: $*" >&2; }
log_tail() { # NAME: the last lines of a daemon's log (its stderr if it died before opening it)
  local f=$dir/log/$1.log
  [ -s "$f" ] || f=$dir/log/$1.out
  [ -s "$f" ] && { echo "--- tail of $f" >&2; tail -n 25 "$f" >&2; }
  return 0
}

# --- packages -------------------------------------------------------------------------------
ensure_packages() {
  local missing=0 tool
  for tool in slurmctld slurmd sbatch scontrol munged munge; do
    command -v "$tool" >/dev/null 2>&1 || missing=1
  done
  [ $missing -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    say "slurm-wlm and munge are not installed, and installing them needs root and apt-get"
    exit 3
  fi
  say "installing slurm-wlm and munge (apt-get)"
  # Package scripts must not start system-wide daemons: policy-rc.d 101 forbids it for the
  # duration of the install (created only if absent, removed right after).
  local policy=/usr/sbin/policy-rc.d made_policy=0
  if [ ! -e $policy ]; then
    printf '#!/bin/sh\nexit 101\n' >$policy && chmod 755 $policy && made_policy=1
  fi
  local ok=0
  for attempt in 1 2; do
    if DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends slurm-wlm munge >"$dir/log/apt.log" 2>&1; then
      ok=1; break
    fi
    if [ $attempt -eq 1 ]; then apt-get update -qq >>"$dir/log/apt.log" 2>&1 || true; fi
  done
  [ $made_policy -eq 1 ] && rm -f $policy
  if [ $ok -eq 0 ]; then
    say "apt-get could not install slurm-wlm and munge:"; tail -n 15 "$dir/log/apt.log" >&2
    exit 3
  fi
}

# --- processes ------------------------------------------------------------------------------
# A pid from DIR/run is ours only while its command line still names DIR (pids get reused).
our_pid() { # NAME -> prints the pid if that daemon of this cluster runs
  local f=$dir/run/$1.pid pid
  [ -s "$f" ] || return 1
  pid=$(cat "$f")
  [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$dir/" || return 1
  echo "$pid"
}

free_port() { # FROM -> the first port from FROM on that nothing listens on
  local p=$1
  while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
  echo "$p"
}

# Starts DAEMON ARGS... in the foreground, detached from the caller (setsid), its pid in DIR/run/NAME.pid.
launch() {
  local name=$1; shift
  setsid "$@" </dev/null >>"$dir/log/$name.out" 2>&1 &
  echo $! >"$dir/run/$name.pid"
}

fail_start() { # NAME WHAT
  say "$1 did not start: $2"
  log_tail "$1"
  stop_daemons
  exit 4
}

wait_until() { # SECONDS NAME COMMAND...: polls COMMAND while daemon NAME is alive
  local deadline=$((SECONDS + $1)) name=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    our_pid "$name" >/dev/null || fail_start "$name" "the process exited"
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.5
  done
}

# --- configuration --------------------------------------------------------------------------
write_conf() {
  # What slurmd detects is what it will report at registration; a node configured with more
  # CPUs or memory than that is marked invalid, so the node line takes `slurmd -C`'s values.
  local detected hw gpus=${SLURM_LOCAL_FAKE_GPUS:-1} port
  detected=$(slurmd -C | head -n 1)
  hw=$(grep -oE "(CPUs|Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore|RealMemory)=[0-9]+" <<<"$detected" | tr "\n" " ")
  case "$hw" in *CPUs=*RealMemory=*) ;; *) say "cannot read CPUs and RealMemory from \`slurmd -C\`: $detected"; exit 4 ;; esac
  port=${SLURM_LOCAL_PORT:-$(free_port $((6900 + RANDOM % 2000)))}
  local gres_types="" node_gres=""
  rm -f "$dir/etc/gres.conf"
  if [ "$gpus" -gt 0 ]; then
    # GPUs without devices behind them: DIR/dev/nvidiaN are links to /dev/null (slurmd wants a
    # device file per GPU, each of its own name). Jobs that ask for --gres=gpu:N get scheduled
    # and see CUDA_VISIBLE_DEVICES; nothing runs on them.
    mkdir -p "$dir/dev"
    for ((i = 0; i < gpus; i++)); do ln -sfn /dev/null "$dir/dev/nvidia$i"; done
    gres_types="GresTypes=gpu"
    node_gres="Gres=gpu:$gpus"
    echo "NodeName=$node Name=gpu File=$dir/dev/nvidia[0-$((gpus - 1))]" >"$dir/etc/gres.conf"
  fi
  cat >"$conf.tmp" <<EOF
# Written by scripts/slurm-local.sh: one node on localhost, all files under $dir.
ClusterName=msrlocal
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$(free_port $((port + 1)))
SlurmUser=$(id -un)
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/run/slurmctld.daemon.pid
SlurmdPidFile=$dir/run/slurmd.daemon.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# A job that does not say --mem gets this per CPU, not the whole node's memory.
DefMemPerCPU=1024
SchedulerType=sched/backfill
ReturnToService=2
MinJobAge=3600
SlurmdTimeout=300
MaxArraySize=1001
$gres_types
NodeName=$node NodeAddr=127.0.0.1 $hw$node_gres State=UNKNOWN
PartitionName=local Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
  mv "$conf.tmp" "$conf"
}

# --- actions --------------------------------------------------------------------------------
start() {
  mkdir -p "$dir"/{etc,state,spool,log,run,munge}
  ensure_packages
  if our_pid slurmctld >/dev/null || our_pid slurmd >/dev/null || our_pid munged >/dev/null; then
    say "a cluster already runs in $dir; stop it first"; exit 4
  fi
  chmod 700 "$dir/munge"
  local key=$dir/munge/munge.key
  if [ ! -s "$key" ]; then
    (umask 077; dd if=/dev/urandom of="$key.tmp" bs=1024 count=1 status=none && mv "$key.tmp" "$key")
  fi
  rm -f "$dir"/log/{munged,slurmctld,slurmd}.{log,out}
  launch munged munged --foreground --force --key-file="$key" --socket="$socket" \
    --pid-file="$dir/run/munged.daemon.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munged.seed"
  wait_until 15 munged bash -c "munge -n -S '$socket' | unmunge -S '$socket'" ||
    fail_start munged "no credential round trip through $socket within 15 s"

  write_conf
  # -c: a cold start; state left by an earlier cluster in DIR (a drained node, old jobs) is dropped.
  launch slurmctld slurmctld -D -c -f "$conf"
  wait_until 30 slurmctld scontrol ping || fail_start slurmctld "\`scontrol ping\` did not answer within 30 s"

  mkdir -p "$dir/spool/$node"
  launch slurmd slurmd -D -f "$conf" -N "$node"
  if ! wait_until 60 slurmd bash -c "sinfo -h -n '$node' -o %t | grep -qx idle"; then
    say "node $node: $(scontrol show node "$node" | grep -oE 'State=[^ ]*|Reason=.*' | tr '\n' ' ')"
    fail_start slurmd "node $node did not come up idle within 60 s"
  fi
  say "running: $(sinfo -h -o '%P %D node(s) %c CPUs %m MB %G %t')"
  echo "export SLURM_CONF=$conf"
}

stop_daemons() {
  # Cancel this cluster's jobs first, so no job step outlives its slurmd.
  if our_pid slurmctld >/dev/null; then
    local jobs
    jobs=$(squeue -h -o %A 2>/dev/null | sort -u | tr '\n' ' ')
    if [ -n "${jobs// }" ]; then
      # shellcheck disable=SC2086
      scancel $jobs 2>/dev/null || true
      local deadline=$((SECONDS + 20))
      while [ -n "$(squeue -h -t running,completing -o %A 2>/dev/null)" ] && [ $SECONDS -lt $deadline ]; do sleep 0.5; done
    fi
  fi
  local name pid deadline
  for name in slurmd slurmctld munged; do
    pid=$(our_pid $name) || { rm -f "$dir/run/$name.pid"; continue; }
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 15))
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    rm -f "$dir/run/$name.pid"
  done
}

status() {
  local name pid down=0
  for name in munged slurmctld slurmd; do
    if pid=$(our_pid $name); then echo "$name: running (pid $pid)"; else echo "$name: not running"; down=1; fi
  done
  if our_pid slurmctld >/dev/null; then
    sinfo -o '%P %D %c %m %G %t' || true
    squeue || true
  fi
  echo "SLURM_CONF=$conf"
  return $down
}

case "$action" in
  start) start ;;
  stop) stop_daemons ;;
  status) status ;;
  *) usage ;;
esac
