"""One process of the concurrent-promotion test: register a version, then compare and promote it."""

from __future__ import annotations

import json
import sys
import time

from replenish import tracking
from replenish.settings import load_settings

HOLDOUT_RMSSE_TAG = "test_holdout_rmsse"


def register_and_promote(work_dir: str, candidate_rmsse: float) -> dict[str, object]:
    settings = load_settings(overrides=[f"work_dir={work_dir}", f"output_dir={work_dir}/out"])
    registry = tracking.ModelRegistry.open(settings)
    client, name = registry.client, registry.name
    run_id = tracking.start_run(settings, f"candidate-{candidate_rmsse}", {}).run_id
    version = client.create_model_version(
        name, source=f"runs:/{run_id}/model", run_id=run_id, tags={HOLDOUT_RMSSE_TAG: str(candidate_rmsse)}
    )

    def champion_rmsse(champion) -> float:
        time.sleep(1.0)  # scoring a champion takes time: the window another promotion could use
        return float(champion.tags[HOLDOUT_RMSSE_TAG])

    decision, champion_score = registry.promote_if_better(version, candidate_rmsse, champion_rmsse, HOLDOUT_RMSSE_TAG)
    return {
        "candidate_rmsse": candidate_rmsse,
        "version": version.version,
        "promoted": decision.promote,
        "reason": decision.reason,
        "champion_rmsse": champion_score,
    }


if __name__ == "__main__":
    print(json.dumps(register_and_promote(sys.argv[1], float(sys.argv[2]))))
