"""One step of the classic pipeline: load -> clean -> split -> train -> evaluate.

Each step reads the folders of the steps it names as inputs ($KFGEN_INPUTS/<step>/) and writes
its own output folder ($KFGEN_OUTPUT), which Argo passes on as an artifact.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from trainer import data


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0] not in STEPS:
        print(f"usage: python -m trainer.pipeline {{{','.join(STEPS)}}}", file=sys.stderr)
        return 2
    inputs = Path(os.environ.get("KFGEN_INPUTS", "/work/in"))
    output = Path(os.environ.get("KFGEN_OUTPUT", "/work/out"))
    output.mkdir(parents=True, exist_ok=True)
    STEPS[argv[0]](inputs, output)
    return 0


def load(inputs: Path, output: Path) -> None:
    data.write_csv(output / "data.csv", data.generate())


def clean(inputs: Path, output: Path) -> None:
    threshold = float(os.environ.get("PARAM_OUTLIER_THRESHOLD", "3.0"))
    rows = data.read_csv(inputs / "load" / "data.csv")
    kept = data.drop_outliers(rows, threshold)
    data.write_csv(output / "data.csv", kept)
    print(json.dumps({"rows": len(rows), "kept": len(kept)}))


def split(inputs: Path, output: Path) -> None:
    train_rows, eval_rows = data.split(data.read_csv(inputs / "clean" / "data.csv"))
    data.write_csv(output / "train.csv", train_rows)
    data.write_csv(output / "eval.csv", eval_rows)


def train(inputs: Path, output: Path) -> None:
    from trainer import model

    dist, trained = model.train(data.read_csv(inputs / "split" / "train.csv"), int(os.environ.get("KFGEN_STEPS", "200")))
    model.export(dist, trained, str(output / "model"))


def evaluate(inputs: Path, output: Path) -> None:
    from trainer import model

    score = model.accuracy(str(inputs / "train" / "model" / "1"), data.read_csv(inputs / "split" / "eval.csv"))
    (output / "metrics.json").write_text(json.dumps({"accuracy": round(score, 4)}) + "\n")
    print(json.dumps({"accuracy": round(score, 4)}))


STEPS = {"load": load, "clean": clean, "split": split, "train": train, "evaluate": evaluate}

if __name__ == "__main__":
    raise SystemExit(main())
