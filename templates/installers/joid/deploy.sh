#!/usr/bin/env bash
# Deploys an OPNFV scenario with JOID on a virtual pod (run on the pod host by the lab).
#
# JOID's own ci/deploy.sh (MAAS and Juju) does the work; this script turns the OPNFV scenario
# name (os-<sdn>-<features>-<mode>, e.g. os-nosdn-nofeature-noha) into its options.
# Every value arrives as an argument and is passed on as one.
set -euo pipefail

usage() {
  echo "usage: $0 [--scenario NAME] [--pod NAME] [--joid-dir DIR] [--release NAME]" >&2
  exit 2
}
fail() {
  echo "joid: $*" >&2
  exit 1
}

scenario="os-nosdn-nofeature-noha"
pod="$(hostname)"
joid_dir="/opt/opnfv/joid"
release="pike"

while (($# > 0)); do
  (($# >= 2)) || usage
  case "$1" in
    --scenario) scenario="$2" ;;
    --pod) pod="$2" ;;
    --joid-dir) joid_dir="$2" ;;
    --release) release="$2" ;;
    *) usage ;;
  esac
  shift 2
done
[[ "$scenario" =~ ^os-([a-z0-9_.]+)-([a-z0-9_.-]+)-(ha|noha)$ ]] ||
  fail "not a JOID scenario (os-<sdn>-<features>-<ha|noha>): ${scenario@Q}"
sdn="${BASH_REMATCH[1]}"
features="${BASH_REMATCH[2]}"
mode="${BASH_REMATCH[3]}"
if [[ "$features" == nofeature ]]; then features=none; fi
if [[ "$mode" == noha ]]; then mode=nonha; fi

[[ -x "$joid_dir/ci/deploy.sh" ]] || fail "no JOID checkout at $joid_dir"
echo "joid: deploying $scenario on $pod (sdn $sdn, features $features, $mode)"
cd "$joid_dir/ci"
./deploy.sh -m openstack -o "$release" -s "$sdn" -t "$mode" -f "$features" -l default -d xenial
echo "joid: $scenario deployed on $pod"
