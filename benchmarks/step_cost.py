"""Seconds per G step of a base config and of variants, measured side by side in one run, and the
number of steps that gives each variant the base's wall time (for comparisons at equal wall time).

    python benchmarks/step_cost.py --base "data=fashion_mnist preset=cpu" --variant "+exp=resnet" \
        [--variant "..."] [--steps 40] [--rounds 3] [--threads 1] [--budget 2811]

Each config trains through ganlab's trainer for --steps G steps with quality evaluation off (its cost
does not depend on the networks); the seconds are the training loop's (summary duration_s). Every
round runs every config once, in the same order, so a busy machine slows a whole round rather than
one config: ratios are taken within each round and reported as their median with the range over
rounds. --threads 1 is what each job of a 2-job sweep gets on a 2-core machine.
"""

from __future__ import annotations

import argparse
from statistics import median

from throughput import ganlab_loop  # benchmarks/ is on the path of a script run from it


def seconds_per_step(overrides: list[str], steps: int, threads: int) -> float:
    return ganlab_loop(overrides, steps, ["metrics.enabled=false", f"trainer.threads={threads}"]) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="", help="overrides of the base config, space-separated (default: none)")
    parser.add_argument("--variant", action="append", required=True, help="overrides added to the base (repeatable)")
    parser.add_argument("--steps", type=int, default=40, help="G steps per config and round (default 40)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1)")
    parser.add_argument("--budget", type=int, help="the base's G steps: print each variant's steps for that wall time")
    args = parser.parse_args()

    base = args.base.split()
    configs = {"base: " + (args.base or "(defaults)"): base, **{v: base + v.split() for v in args.variant}}
    seconds: dict[str, list[float]] = {name: [] for name in configs}
    for r in range(args.rounds):
        print(f"round {r + 1} of {args.rounds}", flush=True)
        for name, overrides in configs.items():
            seconds[name].append(seconds_per_step(overrides, args.steps, args.threads))
            print(f"  {name:<56} {seconds[name][-1]:.4f} s per G step", flush=True)

    base_seconds = next(iter(seconds.values()))
    print(f"\nmedians over {args.rounds} interleaved rounds [min, max], {args.threads} thread(s); ratios within each round:")
    print(f"  {'config':<56} {'s per G step':>24}   {'x the base':>22}" + ("   steps at equal time" if args.budget else ""))
    for name, times in seconds.items():
        ratio = [t / b for t, b in zip(times, base_seconds)]
        line = (f"  {name:<56} {median(times):.4f} [{min(times):.4f}, {max(times):.4f}]   "
                f"{median(ratio):5.2f} [{min(ratio):.2f}, {max(ratio):.2f}]")
        if args.budget:
            line += f"   {round(args.budget / median(ratio))}"
        print(line)


if __name__ == "__main__":
    main()
