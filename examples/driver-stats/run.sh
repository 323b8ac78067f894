#!/usr/bin/env bash
# Runs the driver-stats example on the local cluster: starts the cluster (if it is not
# running), installs the CRDs and applies the example project and its repo ConfigMap.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${VENV:-.venv}/bin
DEV_DIR=${DEV_DIR:-$HOME/.cache/feast-lineage/dev-cluster}

if [ ! -f "$DEV_DIR/state.json" ]; then
  "$BIN/feast-lineage" dev-cluster up --dir "$DEV_DIR"
fi
export KUBECONFIG="$DEV_DIR/kubeconfig"
KUBECTL=$("$BIN/python" -c 'from feast_lineage.devcluster.binaries import ensure_binaries; print(ensure_binaries(log=False).kubectl)')

"$KUBECTL" apply --server-side --force-conflicts -f crds/
"$KUBECTL" wait --for=condition=Established --timeout=60s -f crds/
"$KUBECTL" create namespace driver-stats --dry-run=client -o yaml | "$KUBECTL" apply -f -
"$KUBECTL" apply -n driver-stats -k examples/driver-stats
"$KUBECTL" get -n driver-stats featurestoreprojects,configmaps
echo
echo "The cluster keeps running: export KUBECONFIG=$KUBECONFIG; stop it with: make dev-down"
