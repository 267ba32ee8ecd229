#!/usr/bin/env python3
"""Turns the closing table of a bench run's console output into the Markdown table of BENCHMARKS.md's "Results".

Usage: python3 bench/results-table.py run.log > table.md   (run.log: what the bench printed, e.g. `... --samples > run.log`)
One row per target: the scenario, our median, the peer's, the ratio, the target and how many rounds met it.
"""
import re
import sys

lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
start = max(i for i, line in enumerate(lines) if line.startswith("scenario ") and "median" in line)
medians = {}
out = ["| scenario | ActorQueue | peer | ratio | target | rounds met | |", "|---|---:|---:|---:|---|---:|---|"]
row = re.compile(r"^(\S+)\s+(\S+)\s+([\d,.]+ \S+(?: \S+ \S+)?)\s*(?:([\d.]+)x)?\s*$")
target = re.compile(r"^\s+target (>=|<=) ([\d.]+)x (\S+): ([\d.]+)x (met|MISSED) \(round by round: (\d+) of (\d+) met\)")
scaling = re.compile(r"^(scaling-\S+)\*: per-op cost grows ([\d.]+)x from (\d+) to (\d+) \(target < 2x: (met|MISSED)\)")
scenario = None
for line in lines[start + 1:]:
    if m := target.match(line):
        op, wanted, peer, ratio, verdict, met, rounds = m.groups()
        ours = medians.get((scenario, "ActorQueue"), "")
        theirs = medians.get((scenario, peer), "")
        mark = "**met**" if verdict == "met" else "missed"
        out.append(f"| {scenario} | {ours} | {theirs} ({peer}) | {float(ratio):.3f}× | {'≥' if op == '>=' else '≤'} {wanted}× | {met} of {rounds} | {mark} |")
    elif m := scaling.match(line):
        name, growth, small, large, verdict = m.groups()
        mark = "**met**" if verdict == "met" else "missed"
        out.append(f"| {name}{small}…{large} | per-operation cost × {float(growth):.2f} | | | < 2× | | {mark} |")
    elif m := row.match(line):
        scenario, subject, median, _ = m.groups()
        medians[(scenario, subject)] = median
print("\n".join(out))
