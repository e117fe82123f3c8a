#!/usr/bin/env python3
"""Plots a soak run's samples (perf/soak.rs --csv) as one PNG: server RSS,
thread count and open file descriptors over time, with the warm-up mark and
the +/-5 % band around the RSS there (the soak's pass band).

Usage: python3 perf/plot_soak.py perf/soak-200x30.csv [OUT.png] [--warmup-s S]
S is the warm-up mark the soak printed (default 120, the fixed mark of the
first runs). Needs matplotlib (pip install matplotlib); the soak does not.
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")  # files only: no display on an edge box or in CI
import matplotlib.pyplot as plt


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    args = sys.argv[1:]
    warmup_s = 120.0
    if "--warmup-s" in args:
        at = args.index("--warmup-s")
        warmup_s = float(args[at + 1])
        del args[at : at + 2]
    source = args[0]
    out = args[1] if len(args) > 1 else source.rsplit(".", 1)[0] + ".png"
    with open(source, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        print(f"{source}: no samples", file=sys.stderr)
        return 1
    minutes = [float(r["elapsed_s"]) / 60 for r in rows]
    rss = [int(r["rss_kib"]) / 1024 for r in rows]
    threads = [int(r["threads"]) for r in rows]
    fds = [int(r["fds"]) for r in rows]
    fig, axes = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    for axis, series, label in (
        (axes[0], rss, "RSS (MiB)"),
        (axes[1], threads, "threads"),
        (axes[2], fds, "open fds"),
    ):
        axis.plot(minutes, series, linewidth=1.2)
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
        axis.axvline(warmup_s / 60, color="grey", linestyle="--", linewidth=0.8)
    # The soak's reference: median of the three load samples from the mark.
    warm_samples = [
        rss[i]
        for i, r in enumerate(rows)
        if r["phase"] == "load" and float(r["elapsed_s"]) >= warmup_s
    ][:3]
    if warm_samples:
        warm = sorted(warm_samples)[len(warm_samples) // 2]
        axes[0].axhspan(warm * 0.95, warm * 1.05, color="green", alpha=0.12)
    axes[0].set_title(f"huddle soak: {source}")
    axes[2].set_xlabel("minutes (dashed: warm-up mark; band: RSS there +/-5 %)")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
