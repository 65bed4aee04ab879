"""Run benchmark scenarios: ``python -m bench --help`` (see bench/README.md)."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report
from bench.engine import Pool
from bench.scenarios import INTERLEAVED, S1_RATES, SCENARIOS, Context, Params
from bench.systems import available

RESULTS = Path(__file__).resolve().parent / "results"


def _numbers(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument(
        "scenarios",
        nargs="*",
        default=["S1", "S2", "S3", "S5", "CPU"],
        help="scenarios to run (default S1 S2 S3 S5 CPU; all: "
        f"{' '.join([*SCENARIOS, *INTERLEAVED])})",
    )
    p.add_argument(
        "--systems",
        default="causette,inspircd,bare",
        help="systems to run, each where the scenario applies (default: all)",
    )
    p.add_argument("--out", type=Path, help="results directory (default bench/results/<time>)")
    p.add_argument("--workers", type=int, default=2, help="load generator processes")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per S1/S7 step")
    p.add_argument("--size", type=int, default=64, help="message size in characters")
    p.add_argument("--s1-listeners", type=_ints, default=[100, 1000, 5000])
    p.add_argument("--s1-rates", type=_numbers, default=list(S1_RATES))
    p.add_argument("--s2-room", type=int, default=1000)
    p.add_argument("--s2-rounds", type=int, default=5)
    p.add_argument("--s3-rooms", type=int, default=1000)
    p.add_argument("--s3-members", type=int, default=10)
    p.add_argument("--s3-duration", type=float, default=20.0)
    p.add_argument("--s4-connections", type=int, default=5000)
    p.add_argument("--s4-rate", type=float, default=500.0)
    p.add_argument("--s5-steps", type=_ints, default=[1000, 5000, 10000, 19000])
    p.add_argument("--s5-idle", type=float, default=30.0, help="seconds idle per S5 step")
    p.add_argument("--s6-churn", type=float, default=20.0, help="newcomers per second in S6")
    p.add_argument("--s7-listeners", type=int, default=1000)
    p.add_argument("--s7-rates", type=_numbers, default=[50, 100, 200, 400])
    p.add_argument("--s8-room", type=int, default=1000)
    p.add_argument("--s8-rate", type=float, default=50.0)
    p.add_argument("--s8-duration", type=float, default=20.0)
    p.add_argument("--cpu-listeners", type=int, default=1000)
    p.add_argument("--cpu-rounds", type=int, default=3, help="turns of each system in CPU")
    return p.parse_args(argv)


def _fresh_pool(pool: Pool, workers: int) -> Pool:
    """After a failure: the workers may hold half-open clients."""
    pool.close()
    return Pool(workers)


def _interleaved(ctx: Context, name: str, results: dict[str, Any]) -> bool:
    """Run a scenario whose systems take turns; True if it failed."""
    run, systems, _ = INTERLEAVED[name]
    by_system: dict[str, Any] = results["scenarios"].setdefault(name, {})
    chosen = []
    for system in [s for s in ctx.params.systems if s in systems]:
        why = available(system)
        if why:
            print(f"{name} {system}: skipped: {why}")
            by_system[system] = {"skipped": why}
        else:
            chosen.append(system)
    began = time.monotonic()
    try:
        by_system.update(run(ctx, chosen))
    except Exception as exc:
        traceback.print_exc()
        for system in chosen:
            by_system[system] = {"skipped": f"failed: {type(exc).__name__}: {exc}"[:500]}
        ctx.pool = _fresh_pool(ctx.pool, ctx.params.workers)
        return True
    finally:
        print(f"{name}: {time.monotonic() - began:.0f} s")
    return False


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    wanted = [s.upper() for s in args.scenarios]
    unknown = [s for s in wanted if s not in SCENARIOS and s not in INTERLEAVED]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    started = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out: Path = args.out or RESULTS / started
    out.mkdir(parents=True, exist_ok=True)
    params = Params(
        systems=args.systems.split(","),
        workers=args.workers,
        duration=args.duration,
        size=args.size,
        s1_listeners=args.s1_listeners,
        s1_rates=args.s1_rates,
        s2_room=args.s2_room,
        s2_rounds=args.s2_rounds,
        s3_rooms=args.s3_rooms,
        s3_members=args.s3_members,
        s3_duration=args.s3_duration,
        s4_connections=args.s4_connections,
        s4_rate=args.s4_rate,
        s5_steps=args.s5_steps,
        s5_idle=args.s5_idle,
        s6_churn=args.s6_churn,
        s7_listeners=args.s7_listeners,
        s7_rates=args.s7_rates,
        s8_room=args.s8_room,
        s8_rate=args.s8_rate,
        s8_duration=args.s8_duration,
        cpu_listeners=args.cpu_listeners,
        cpu_rounds=args.cpu_rounds,
    )
    results: dict[str, Any] = {
        "started": started,
        "command": "python -m bench " + shlex.join(argv),
        "machine": report.machine(),
        "params": vars(params),
        "descriptions": {
            name: desc for name, (_, _, desc) in [*SCENARIOS.items(), *INTERLEAVED.items()]
        },
        "scenarios": {},
    }
    ctx = Context(params, Pool(args.workers), out / "work")
    failed = False
    try:
        for name in wanted:
            if name in INTERLEAVED:
                failed = _interleaved(ctx, name, results) or failed
                report.write(results, out)
                continue
            run, systems, _ = SCENARIOS[name]
            by_system: dict[str, Any] = results["scenarios"].setdefault(name, {})
            for system in [s for s in params.systems if s in systems]:
                why = available(system)
                if why:
                    print(f"{name} {system}: skipped: {why}")
                    by_system[system] = {"skipped": why}
                    continue
                began = time.monotonic()
                try:
                    by_system[system] = run(ctx, system)
                except Exception as exc:
                    failed = True
                    traceback.print_exc()
                    by_system[system] = {"skipped": f"failed: {type(exc).__name__}: {exc}"[:500]}
                    ctx.pool = _fresh_pool(ctx.pool, args.workers)
                print(f"{name} {system}: {time.monotonic() - began:.0f} s")
                report.write(results, out)
    finally:
        ctx.pool.close()
    report.write(results, out)
    print((out / "summary.md").read_text())
    print(f"results in {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
