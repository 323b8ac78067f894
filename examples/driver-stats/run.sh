#!/usr/bin/env bash
# The driver-stats example end to end on the local cluster: start the cluster with the
# operator and MLflow (unless running), apply the project, wait until the operator has
# run `feast apply`, backfill a week of features, and show what was recorded where.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${VENV:-.venv}/bin
DEV_DIR=${DEV_DIR:-$HOME/.cache/feast-lineage/dev-cluster}
NS=driver-stats

if [ ! -f "$DEV_DIR/state.json" ]; then
  "$BIN/feast-lineage" dev-cluster up --with-operator --dir "$DEV_DIR"
fi
state() { "$BIN/python" -c "import json,sys; print(json.load(open('$DEV_DIR/state.json'))['$1'] or '')"; }
if [ -z "$(state operatorMetrics)" ]; then
  echo "the cluster in $DEV_DIR runs without the operator; run 'make dev-down' and try again" >&2
  exit 1
fi
export KUBECONFIG="$DEV_DIR/kubeconfig"
kubectl() { "$(state kubectl)" "$@"; }

kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f -
# The project's files (registry, online store, offline data) live on a hostPath under the
# cluster's directory, which each `dev-cluster up` empties: a new cluster starts from nothing.
DATA="$DEV_DIR/example-data"
mkdir -p "$DATA"
cp examples/driver-stats/feature_repo/driver_stats.parquet "$DATA/"
kubectl kustomize examples/driver-stats | sed "s#/var/lib/feast-lineage-example#$DATA#" | kubectl apply -n "$NS" -f -
echo "waiting for the operator to apply the project (the first run imports Feast: ~30 s)..."
kubectl wait -n "$NS" featurestoreproject/driver-stats --for=condition=Ready --timeout=300s

backfill=examples/driver-stats/materializationjob-backfill.yaml
kubectl get -n "$NS" -f "$backfill" >/dev/null 2>&1 || kubectl create -n "$NS" -f "$backfill"
kubectl wait -n "$NS" -f "$backfill" --for=jsonpath='{.status.phase}'=Succeeded --timeout=300s

echo "training a model in a Job labelled featurelineage.io/inject: driver-stats..."
kubectl apply -n "$NS" -k examples/driver-stats/training
kubectl wait -n "$NS" job/driver-activity-training --for=condition=Complete --timeout=300s

echo
kubectl get -n "$NS" featurestoreprojects,materializationjobs,jobs
echo
echo "last apply:          $(kubectl get -n "$NS" fsp driver-stats -o jsonpath='{.status.lastApply.mlflow.runUrl}')"
echo "backfill MLflow run: $(kubectl get -n "$NS" -f "$backfill" -o jsonpath='{.status.mlflow.runUrl}')"
echo "training run:        $(state mlflowUrl)/#/models/driver-activity (registered model, tagged feast.feature_service)"
echo "operator metrics:    $(state operatorMetrics)"
echo
echo "The cluster keeps running: export KUBECONFIG=$KUBECONFIG; stop everything with: make dev-down"
