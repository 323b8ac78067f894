"""What impact analysis adds to an apply, on real Feast and a real MLflow server.

Applies the driver-stats example once, registers --models model versions on its feature
service driver_activity_v1 (trained in the namespace, as injected training pods leave them),
then times --rounds applies of a change to a view the service includes, alternately with
and without the analysis, and prints the median of each and of the analysis alone (Feast's
plan, the spec comparison and the MLflow lookups). Everything runs in this process, as in a
runner pod.

    .venv/bin/python benchmarks/impact_plan.py --rounds 5 --models 20
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tests.integration.mlflow_checks import register_trained_model  # noqa: E402
from tests.integration.runner_setup import PROJECT, make_world, rename_trips_feature  # noqa: E402

from feast_lineage.audit.mlflow_rest import MlflowRestClient  # noqa: E402
from feast_lineage.devcluster.mlflow_server import start_mlflow  # noqa: E402
from feast_lineage.runner.apply_op import ImpactGate, run_apply  # noqa: E402
from feast_lineage.runner.model_lookup import find_versions  # noqa: E402

NAMESPACE = "bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--models", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        server = start_mlflow(root / "mlflow", timeout=400)
        try:
            world = make_world(root / "world", server.url)
            repo = world.repo_dir
            (repo / "feature_store.yaml").write_text((world.root / "config" / "feature_store.yaml").read_text())
            run_apply(repo)
            for _ in range(args.models):
                register_trained_model(server.url, NAMESPACE, "driver_activity_v1", PROJECT)
            gate = ImpactGate(
                "Warn",
                None,
                NAMESPACE,
                lambda services: find_versions(MlflowRestClient(server.url, timeout=30, max_retries=0), services),
            )
            timed: dict[str, list[float]] = {"without": [], "with": [], "lookup": []}
            features = repo / "features.py"
            for round_number in range(args.rounds):
                for label, current_gate in (("without", None), ("with", gate)):
                    old, new = (
                        ("avg_trips", "avg_daily_trips")
                        if "avg_trips" in features.read_text()
                        else (
                            "avg_daily_trips",
                            "avg_trips",
                        )
                    )
                    features.write_text(rename_trips_feature(features.read_text(), old, new))
                    started = time.perf_counter()
                    outcome = run_apply(repo, current_gate)
                    timed[label].append(time.perf_counter() - started)
                    if current_gate is not None:
                        assert outcome.impact is not None and len(outcome.impact.models) == min(args.models, 20)
                started = time.perf_counter()
                client = MlflowRestClient(server.url, timeout=30, max_retries=0)
                found, problem = find_versions(client, ["driver_activity_v1"])
                timed["lookup"].append(time.perf_counter() - started)
                assert len(found) == args.models and problem is None, problem
                print(f"round {round_number + 1}/{args.rounds} done", file=sys.stderr)
        finally:
            server.stop()
    medians = {label: statistics.median(values) for label, values in timed.items()}
    print(f"apply without analysis: median {medians['without']:.3f} s")
    print(f"apply with analysis:    median {medians['with']:.3f} s ({args.models} model versions affected)")
    print(f"analysis overhead:      {medians['with'] - medians['without']:+.3f} s")
    print(f"MLflow lookup alone:    median {medians['lookup']:.3f} s ({args.rounds} rounds)")


if __name__ == "__main__":
    main()
