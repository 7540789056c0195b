"""The classic pipeline's data steps on CSV files: load (generate), drop outliers, split."""

from __future__ import annotations

import csv
import math
import random
from pathlib import Path

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
CLASSES = 3
# Per-class feature means and spreads of an iris-like data set (three overlapping clusters).
_CENTERS = [(5.0, 3.4, 1.5, 0.25), (5.9, 2.8, 4.3, 1.3), (6.6, 3.0, 5.6, 2.0)]
_SPREAD = (0.35, 0.35, 0.45, 0.2)


def generate(rows: int = 600, seed: int = 7, outlier_share: float = 0.02) -> list[list[float]]:
    """Rows of four features and a label, with a few wild outliers for `clean` to drop."""
    rng = random.Random(seed)
    data = []
    for i in range(rows):
        label = i % CLASSES
        features = [round(rng.gauss(m, s), 3) for m, s in zip(_CENTERS[label], _SPREAD)]
        if rng.random() < outlier_share:
            features[rng.randrange(4)] = round(rng.choice([-1, 1]) * rng.uniform(20, 50), 3)
        data.append(features + [label])
    return data


def write_csv(path: Path, rows: list[list[float]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(FEATURES + ["label"])
        writer.writerows(rows)


def read_csv(path: Path) -> list[list[float]]:
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        return [[float(v) for v in row[:-1]] + [int(row[-1])] for row in reader]


def drop_outliers(rows: list[list[float]], threshold: float) -> list[list[float]]:
    """Rows whose every feature is within `threshold` standard deviations of its mean."""
    columns = list(zip(*[r[:-1] for r in rows]))
    means = [sum(c) / len(c) for c in columns]
    stds = [math.sqrt(sum((v - m) ** 2 for v in c) / len(c)) or 1.0 for c, m in zip(columns, means)]
    return [r for r in rows if all(abs(v - m) / s <= threshold for v, m, s in zip(r[:-1], means, stds))]


def split(rows: list[list[float]], eval_share: float = 0.2, seed: int = 11) -> tuple[list, list]:
    shuffled = rows[:]
    random.Random(seed).shuffle(shuffled)
    cut = int(len(shuffled) * (1 - eval_share))
    return shuffled[:cut], shuffled[cut:]
