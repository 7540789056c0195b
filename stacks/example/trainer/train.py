"""The TFJob's entry point: data, distributed training, SavedModel (see trainer/__init__.py)."""

from __future__ import annotations

import argparse
import json
import os

from trainer import data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--outlier-threshold", type=float, default=float(os.environ.get("PARAM_OUTLIER_THRESHOLD", "3.0")))
    args = parser.parse_args(argv)
    steps = int(os.environ.get("KFGEN_STEPS", args.steps))
    model_dir = os.environ.get("KFGEN_MODEL_DIR", "model")  # a string: gs:// and s3:// stay URLs

    from trainer import model  # TensorFlow loads here, after the arguments are checked

    rows = data.drop_outliers(data.generate(), args.outlier_threshold)
    train_rows, eval_rows = data.split(rows)
    dist, trained = model.train(train_rows, steps)
    saved = model.export(dist, trained, model_dir)
    if saved:
        print(json.dumps({"saved_model": saved, "eval_accuracy": round(model.accuracy(saved, eval_rows), 4)}), flush=True)
    model.barrier(dist)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
