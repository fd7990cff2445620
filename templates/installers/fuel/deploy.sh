#!/usr/bin/env bash
# Deploys an OPNFV scenario with Fuel on a virtual pod (run on the pod host by the lab).
#
# The Fuel master VM (--master-domain) installs itself from the Fuel ISO when the lab starts it.
# This script waits until the master answers over SSH on the admin network, starts the node VMs
# so that they network-boot from it, waits for Fuel to discover them, then creates an environment
# named after the scenario, gives the first node the controller role and the others compute, and
# deploys. The lab's Fuel ISO authorises the host's root key on the master.
#
# Every value arrives as an argument; commands run on the master are quoted with printf %q.
set -euo pipefail

usage() {
  echo "usage: $0 --master-domain NAME [--scenario NAME] [--pod NAME] [--node DOMAIN]..." >&2
  echo "       [--master-address IP] [--release ID] [--connect URI]" >&2
  exit 2
}
fail() {
  echo "fuel: $*" >&2
  exit 1
}

scenario="os-nosdn-nofeature-ha"
pod="$(hostname)"
master_domain=""
master_address="10.20.0.2"
release="2"
connect="qemu:///system"
nodes=()

while (($# > 0)); do
  (($# >= 2)) || usage
  case "$1" in
    --scenario) scenario="$2" ;;
    --pod) pod="$2" ;;
    --master-domain) master_domain="$2" ;;
    --master-address) master_address="$2" ;;
    --release) release="$2" ;;
    --connect) connect="$2" ;;
    --node) nodes+=("$2") ;;
    *) usage ;;
  esac
  shift 2
done
[[ -n "$master_domain" ]] || usage
[[ "$scenario" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || fail "not a scenario name: ${scenario@Q}"

known_hosts="$(mktemp)"
trap 'rm -f "$known_hosts"' EXIT

# Runs a command on the Fuel master; each argument is quoted for its shell.
on_master() {
  ssh -o BatchMode=yes -o ConnectTimeout=10 -o StrictHostKeyChecking=accept-new \
    -o UserKnownHostsFile="$known_hosts" "root@$master_address" "$(printf '%q ' "$@")"
}

# wait_for SECONDS DESCRIPTION COMMAND...: retries COMMAND every 30 s until it succeeds.
wait_for() {
  local deadline=$((SECONDS + $1)) what="$2"
  shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "gave up waiting for $what"
    sleep 30
  done
}

discovered() {
  local count
  count="$(on_master fuel2 node list --format value --column status | grep -c '^discover$')"
  ((count >= ${#nodes[@]}))
}

echo "fuel: deploying $scenario on $pod (master $master_domain at $master_address)"
[[ "$(virsh -c "$connect" domstate --domain "$master_domain")" == running ]] ||
  fail "the Fuel master $master_domain is not running"
wait_for 5400 "the Fuel master to finish installing" on_master fuel2 release list

for node in "${nodes[@]}"; do
  virsh -c "$connect" start --domain "$node"
done
wait_for 1800 "Fuel to discover ${#nodes[@]} nodes" discovered

env_id="$(on_master fuel2 env create --release "$release" --format value --column id "$scenario")"
mapfile -t node_ids < <(on_master fuel2 node list --format value --column id | sort -n)
((${#node_ids[@]} > 0)) || fail "Fuel lists no nodes"
role=controller
for node_id in "${node_ids[@]}"; do
  on_master fuel2 env add nodes --env "$env_id" --nodes "$node_id" --roles "$role"
  role=compute
done
on_master fuel2 env deploy "$env_id"

operational() {
  [[ "$(on_master fuel2 env show --format value --column status "$env_id")" == operational ]]
}
wait_for 10800 "environment $env_id to become operational" operational
echo "fuel: $scenario deployed on $pod"
