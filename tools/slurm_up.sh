#!/usr/bin/env bash
# Bring up a one-node SLURM cluster on this machine from Debian's packages (slurm-wlm, munge):
# munged, slurmctld and slurmd, with a slurm.conf in STATE_DIR (default /tmp/ganlab-slurm).
# Needs root. Prints the line to export (SLURM_CONF=...) once the node is idle; exits non-zero
# with the reason when the services cannot be started. Stop it with tools/slurm_down.sh.
set -euo pipefail
STATE=${1:-/tmp/ganlab-slurm}
[ "$(id -u)" = 0 ] || { echo "slurm_up: needs root (to start munged, slurmctld and slurmd)" >&2; exit 3; }
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null \
    || { echo "slurm_up: cannot install slurm-wlm and munge" >&2; exit 3; }
fi
HOST=$(hostname -s)
CPUS=$(nproc)
MEM=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
mkdir -p "$STATE"/spool "$STATE"/ctld "$STATE"/log

# munge: the authentication every SLURM daemon and command uses
[ -s /etc/munge/munge.key ] || mungekey --create --keyfile /etc/munge/munge.key
chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge && chown munge:munge /run/munge /var/log/munge /var/lib/munge
pgrep -x munged >/dev/null || su -s /bin/sh munge -c "munged --force"

cat > "$STATE/slurm.conf" <<CONF
ClusterName=ganlab
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$STATE/slurm.conf"
pkill -x slurmctld 2>/dev/null || true
pkill -x slurmd 2>/dev/null || true
sleep 1
slurmctld -f "$SLURM_CONF" -i || { echo "slurm_up: slurmctld did not start (see $STATE/log/slurmctld.log)" >&2; exit 3; }
slurmd -f "$SLURM_CONF" || { echo "slurm_up: slurmd did not start (see $STATE/log/slurmd.log)" >&2; exit 3; }
for _ in $(seq 60); do
  if sinfo -h -o %T 2>/dev/null | grep -qx idle; then
    echo "SLURM_CONF=$SLURM_CONF"
    exit 0
  fi
  sleep 0.5
done
echo "slurm_up: the node did not become idle in 30 s: $(sinfo -h -o '%T %E' 2>&1 | head -1) (logs in $STATE/log/)" >&2
exit 3
