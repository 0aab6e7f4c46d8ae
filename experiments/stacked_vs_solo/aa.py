"""The A/A verdict: each seed's best score stacked against solo, paired by seed (judging/stats.py's tests).

    python experiments/stacked_vs_solo/aa.py [OUT]     # OUT: outputs/studies/stacked_vs_solo (run.sh's)
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from ganlab.judging.stats import median_interval, sign_flip_p, t_test_p
from ganlab.record.catalog import find_runs


def best_by_seed(folder: Path) -> dict[int, float]:
    return {int(next(o for o in run.overrides if o.startswith("seed=")).split("=")[1]): run.best["score"]
            for run in find_runs(folder)}


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "outputs/studies/stacked_vs_solo")
    solo, stacked = ({seed: score for part in sorted(out.glob(f"{way}*")) for seed, score in best_by_seed(part).items()}
                     for way in ("solo", "stacked"))
    seeds = sorted(set(solo) & set(stacked))
    diffs = [stacked[s] - solo[s] for s in seeds]
    low, high = median_interval(diffs)
    print(f"seeds {seeds[0]}-{seeds[-1]}: best swd solo {statistics.fmean(solo[s] for s in seeds):.3f} "
          f"(sd {statistics.stdev(solo[s] for s in seeds):.3f}), stacked {statistics.fmean(stacked[s] for s in seeds):.3f} "
          f"(sd {statistics.stdev(stacked[s] for s in seeds):.3f})")
    print(f"stacked - solo, paired by seed: median {statistics.median(diffs):+.3f}, 95% interval [{low:+.3f}, {high:+.3f}], "
          f"sign-flip p {sign_flip_p(diffs):.3f}, t-test p {t_test_p(diffs):.3f}")


if __name__ == "__main__":
    main()
