#!/usr/bin/env bash
# Deploys an OPNFV scenario with Compass on a virtual pod (run on the pod host by the lab).
#
# compass4nfv's deploy.sh reads the pod description of the scenario (DHA) and the network
# layout (NETWORK) from its virtual-environment configs; this script points it at them.
# Every value arrives as an argument and is passed on through the environment, never as code.
set -euo pipefail

usage() {
  echo "usage: $0 [--scenario NAME] [--pod NAME] [--compass-dir DIR]" >&2
  exit 2
}
fail() {
  echo "compass: $*" >&2
  exit 1
}

scenario="os-nosdn-nofeature-ha"
pod="$(hostname)"
compass_dir="/opt/opnfv/compass4nfv"

while (($# > 0)); do
  (($# >= 2)) || usage
  case "$1" in
    --scenario) scenario="$2" ;;
    --pod) pod="$2" ;;
    --compass-dir) compass_dir="$2" ;;
    *) usage ;;
  esac
  shift 2
done
[[ "$scenario" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || fail "not a scenario name: ${scenario@Q}"

conf="$compass_dir/deploy/conf/vm_environment"
export DHA="$conf/$scenario.yml"
export NETWORK="$conf/network.yml"
export DEPLOY_SCENARIO="$scenario"
[[ -f "$DHA" ]] || fail "Compass has no virtual pod description for $scenario ($DHA)"
[[ -x "$compass_dir/deploy.sh" ]] || fail "no compass4nfv checkout at $compass_dir"

echo "compass: deploying $scenario on $pod"
cd "$compass_dir"
./deploy.sh
echo "compass: $scenario deployed on $pod"
