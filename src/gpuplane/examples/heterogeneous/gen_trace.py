"""Write trace.csv: a few hundred jobs of three tenants that ask for devices through claims.

Run from this folder with ``python gen_trace.py``. The seed is fixed, so the
file comes out the same every time; the committed trace.csv is its output.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

SEED = 20260522
JOBS = 300
SPAN_SECONDS = 2 * 24 * 3600

# tenant -> (share of jobs, [(claims of one pod, pods, weight)])
SHAPES = {
    "llm": (0.3, [("gpu-80gi-x8", (1, 2), 3), ("gpu-80gi", (1, 4), 4), ("gpu-141gi", (1, 1), 1)]),
    "vision": (0.35, [("gpu-nic-pair", (1, 4), 5), ("gpu-nic-pair|gpu-nic-pair", (1, 2), 3),
                      ("two-gpus-one-nic", (1, 2), 2)]),
    "research": (0.35, [("any-64gi", (1, 4), 5), ("any-64gi-x4", (1, 2), 3), ("prefer-mi300x", (1, 1), 1)]),
}


def main() -> None:
    rng = random.Random(SEED)
    tenants = list(SHAPES)
    shares = [SHAPES[tenant][0] for tenant in tenants]
    rows = []
    for number in range(JOBS):
        tenant = rng.choices(tenants, weights=shares)[0]
        shapes = SHAPES[tenant][1]
        claims, (low, high), _ = rng.choices(shapes, weights=[shape[2] for shape in shapes])[0]
        rows.append({
            "id": f"{tenant}-{number:03d}",
            "submit_time": round(rng.uniform(0, SPAN_SECONDS)),
            # Log-normal running times: a median of about 1.5 hours, a long tail up to 12 hours.
            "duration": round(min(12 * 3600, max(300, rng.lognormvariate(8.6, 0.9)))),
            "tenant": tenant,
            "pods": rng.randint(low, high),
            "claims": claims,
        })
    rows.sort(key=lambda row: (row["submit_time"], row["id"]))
    target = Path(__file__).with_name("trace.csv")
    with target.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
