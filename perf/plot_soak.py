#!/usr/bin/env python3
"""Plots a soak run's samples (perf/soak.rs --csv) as one PNG: server RSS,
thread count and open file descriptors over time, with the warm-up mark.

Usage: python3 perf/plot_soak.py perf/soak-200x30.csv [OUT.png]
Needs matplotlib (pip install matplotlib); the soak itself does not.
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
    source = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) > 2 else source.rsplit(".", 1)[0] + ".png"
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
        axis.axvline(2.0, color="grey", linestyle="--", linewidth=0.8)
    axes[0].set_title(f"huddle soak: {source}")
    axes[2].set_xlabel("minutes (dashed: end of warm-up)")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
