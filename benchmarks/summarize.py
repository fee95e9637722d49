"""Turns a pytest-benchmark JSON file into the ratio table of benchmarks/README.md.

    python benchmarks/summarize.py bench.json

Within each group, every non-torchvision entry is compared with the group's
torchvision entry: ratio = torchvision median / our median.
"""

import json
import sys
from collections import defaultdict


def main(path: str) -> None:
    data = json.load(open(path))
    groups = defaultdict(dict)
    for b in data["benchmarks"]:
        impl = b["name"].split("[")[-1].rstrip("]")
        groups[b["group"]][impl] = b["stats"]["median"]
    print("| workload | ours (median) | torchvision (median) | ratio |")
    print("|---|---|---|---|")
    for group, entries in groups.items():
        tv = [v for k, v in entries.items() if k.split("-")[-1] == "torchvision"]
        for impl, med in entries.items():
            if impl.split("-")[-1] == "torchvision":
                continue
            label = impl.split("-")[-1]
            ref = f"{tv[0] * 1e3:.1f} ms" if tv else "n/a"
            ratio = f"**{tv[0] / med:.1f}x**" if tv else "n/a"
            print(f"| {group} [{label}] | {med * 1e3:.2f} ms | {ref} | {ratio} |")


if __name__ == "__main__":
    main(sys.argv[1])
