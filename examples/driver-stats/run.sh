#!/usr/bin/env bash
# The driver-stats example end to end on the local cluster: start the cluster with the operator
# and MLflow (unless running), apply the project, backfill a week of features, train a model in a
# Job that only carries the injection label, then tell what happened with `feast-lineage lineage`.
#
# Safe to run again: what exists is kept (a failed backfill or training Job is run again).
# A failing step stops the script with the step, the cause and where its log is.
#
# Environment: DEV_DIR (cluster state, default ~/.cache/feast-lineage/dev-cluster), VENV (.venv),
# EXAMPLE_DATA_DIR (the hostPath with the offline data, registry and online store, default
# /var/lib/feast-lineage-example), EXAMPLE_TIMEOUT (seconds each step may take, default 300).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${VENV:-.venv}/bin
DEV_DIR=${DEV_DIR:-$HOME/.cache/feast-lineage/dev-cluster}
DATA_DIR=${EXAMPLE_DATA_DIR:-$DEV_DIR/example-data}
TIMEOUT=${EXAMPLE_TIMEOUT:-300}
NS=driver-stats
PROJECT=driver-stats
BACKFILL=driver-stats-backfill-2026-11-02
TRAINING_JOB=driver-activity-training
MODEL=driver-activity
export NO_PROXY=${NO_PROXY:-127.0.0.1,localhost}

STEP="start"
STEP_LOG="$DEV_DIR/logs"
step() {
  STEP=$1
  STEP_LOG=$2
  echo
  echo "==> $STEP"
}
fail() {
  {
    echo
    echo "FAILED: $STEP"
    echo "cause: $1"
    echo "log:   $STEP_LOG"
  } >&2
  exit 1
}
trap 'fail "\`$BASH_COMMAND\` exited with $? (line $LINENO)"' ERR

state() { "$BIN/python" -c "import json,sys; print(json.load(open('$DEV_DIR/state.json'))['$1'] or '')"; }
kubectl() { "$KUBECTL" "$@"; }
lineage() { env -u MLFLOW_TRACKING_URI "$BIN/feast-lineage" lineage "$@"; }

# Polls until $1 prints one of the words in $2 (done) or $3 (failed); prints what it saw last.
wait_for() {
  local probe=$1 done=$2 failed=$3 deadline=$((SECONDS + TIMEOUT)) seen=""
  while true; do
    seen=$(eval "$probe" 2>/dev/null || true)
    for word in $done; do [ "$seen" = "$word" ] && { echo "$seen"; return 0; }; done
    for word in $failed; do [ "$seen" = "$word" ] && { echo "$seen"; return 1; }; done
    [ "$SECONDS" -ge "$deadline" ] && { echo "${seen:-nothing} after ${TIMEOUT}s"; return 1; }
    sleep 2
  done
}

# Where a Job's pod output is: `kubectl logs`, and the local node's copy.
job_logs() {
  echo "kubectl logs -n $NS job/$1 (or $DEV_DIR/node/pods/${NS}_$1-*/)"
}

# -- the local cluster -----------------------------------------------------------------------------
step "local cluster: Kubernetes binaries, control plane, local node, MLflow, operator" "$DEV_DIR/logs"
if [ -f "$DEV_DIR/state.json" ]; then
  KUBECTL=$(state kubectl)
  export KUBECONFIG="$DEV_DIR/kubeconfig"
  kubectl get --raw /readyz --request-timeout=5s >/dev/null 2>&1 \
    || fail "the cluster recorded in $DEV_DIR does not answer; run 'make dev-down' (or feast-lineage dev-cluster down --dir $DEV_DIR) and try again"
  [ -n "$(state operatorMetrics)" ] \
    || fail "the cluster in $DEV_DIR runs without the operator; run 'make dev-down' and try again"
  echo "already running ($DEV_DIR)"
else
  "$BIN/feast-lineage" dev-cluster up --with-operator --dir "$DEV_DIR" \
    || fail "feast-lineage dev-cluster up failed (its message above names the component)"
  KUBECTL=$(state kubectl)
  export KUBECONFIG="$DEV_DIR/kubeconfig"
fi
MLFLOW_URL=$(state mlflowUrl)

# -- apply -----------------------------------------------------------------------------------------
step "apply the $PROJECT project (the operator runs feast apply in a Job; the first one imports Feast, ~30 s)" \
  "$DEV_DIR/logs/operator.log"
kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
# The project's files (registry, online store, offline data) live on a hostPath, by default under
# the cluster's directory, which each `dev-cluster up` empties: a new cluster starts from nothing.
mkdir -p "$DATA_DIR"
cp examples/driver-stats/feature_repo/driver_stats.parquet "$DATA_DIR/"
kubectl kustomize examples/driver-stats | sed "s#/var/lib/feast-lineage-example#$DATA_DIR#" | kubectl apply -n "$NS" -f -
condition() { kubectl get -n "$NS" fsp "$PROJECT" -o jsonpath="{.status.conditions[?(@.type==\"$1\")].$2}"; }
project_state() {
  if [ "$(condition Ready status)" = True ]; then echo Ready
  elif [ "$(condition Stalled status)" = True ]; then echo Stalled
  else echo "$(condition Ready reason)"; fi
}
if ! seen=$(wait_for project_state "Ready" "Stalled"); then
  apply_job=$(kubectl get -n "$NS" fsp "$PROJECT" -o jsonpath='{.status.lastApply.jobName}' 2>/dev/null || true)
  [ -n "$apply_job" ] && STEP_LOG="$(job_logs "$apply_job"); operator: $DEV_DIR/logs/operator.log"
  fail "the project is not Ready ($seen): $(condition Ready reason) $(condition Ready message)"
fi
# The training pod is tagged with the apply's MLflow run: wait until MLflow has it (the operator
# redelivers a record MLflow could not take at once).
apply_run() { kubectl get -n "$NS" fsp "$PROJECT" -o jsonpath='{.status.lastApply.mlflow.runId}'; }
wait_for 'apply_run | grep -q . && echo recorded' "recorded" "" >/dev/null \
  || echo "note: the apply is not in MLflow yet (status.pendingAudit holds it until MLflow takes it)"
echo "applied $(kubectl get -n "$NS" fsp "$PROJECT" -o jsonpath='{.status.lastApply.revision}'), MLflow run $(apply_run)"

# -- backfill --------------------------------------------------------------------------------------
step "backfill a week of features (a MaterializationJob)" "$(job_logs "$BACKFILL-materialize")"
backfill=examples/driver-stats/materializationjob-backfill.yaml
phase() { kubectl get -n "$NS" mj "$BACKFILL" -o jsonpath='{.status.phase}'; }
if [ "$(phase 2>/dev/null || true)" = Failed ]; then
  echo "the earlier backfill failed; running it again"
  kubectl delete -n "$NS" mj "$BACKFILL" --wait=true
fi
kubectl get -n "$NS" mj "$BACKFILL" >/dev/null 2>&1 || kubectl create -n "$NS" -f "$backfill"
if ! seen=$(wait_for phase "Succeeded" "Failed"); then
  fail "the backfill did not succeed ($seen): $(kubectl get -n "$NS" mj "$BACKFILL" -o jsonpath='{.status.reason}: {.status.message}')"
fi
backfill_run() { kubectl get -n "$NS" mj "$BACKFILL" -o jsonpath='{.status.mlflow.runId}'; }
wait_for 'backfill_run | grep -q . && echo recorded' "recorded" "" >/dev/null \
  || echo "note: the backfill is not in MLflow yet (status.pendingAudit holds it until MLflow takes it)"
echo "materialized $(kubectl get -n "$NS" mj "$BACKFILL" -o jsonpath='[{.status.window.start}, {.status.window.end})'), MLflow run $(backfill_run)"

# -- training --------------------------------------------------------------------------------------
step "train a model in a Job labelled featurelineage.io/inject: $PROJECT" "$(job_logs "$TRAINING_JOB")"
job_state() {
  kubectl get -n "$NS" job "$TRAINING_JOB" \
    -o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type}{"\n"}{end}' | grep -E '^(Complete|Failed)$' | head -1
}
if [ "$(job_state 2>/dev/null || true)" = Failed ]; then
  echo "the earlier training Job failed; running it again"
  kubectl delete -n "$NS" job "$TRAINING_JOB" --wait=true --cascade=foreground
fi
kubectl apply -n "$NS" -k examples/driver-stats/training
if ! seen=$(wait_for job_state "Complete" "Failed"); then
  message=$(kubectl get -n "$NS" pods -l "job-name=$TRAINING_JOB" \
    -o jsonpath='{.items[-1:].status.containerStatuses[0].state.terminated.reason} {.items[-1:].status.containerStatuses[0].state.terminated.message}' 2>/dev/null || true)
  fail "the training Job did not complete ($seen) ${message}"
fi
echo "trained; its pod got Feast and MLflow from the webhook: $(kubectl get -n "$NS" pods -l "job-name=$TRAINING_JOB" \
  -o jsonpath='{.items[-1:].metadata.annotations.featurelineage\.io/injected-project}')"

# -- the story -------------------------------------------------------------------------------------
step "what happened, as \`feast-lineage lineage\` tells it (from the cluster and MLflow)" "$MLFLOW_URL"
for question in "history $PROJECT -n $NS" "model $MODEL/latest -n $NS"; do
  echo
  echo "\$ feast-lineage lineage $question"
  # shellcheck disable=SC2086 # the question is words
  lineage $question || fail "feast-lineage lineage $question exited with $?"
done

echo
echo "MLflow UI:        $MLFLOW_URL (the registered model: $MLFLOW_URL/#/models/$MODEL)"
echo "operator metrics: $(state operatorMetrics)"
echo "ask more:         export KUBECONFIG=$KUBECONFIG; $BIN/feast-lineage lineage --help"
echo "The cluster keeps running; stop everything with: make dev-down (feast-lineage dev-cluster down --dir $DEV_DIR)"
