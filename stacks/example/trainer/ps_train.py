"""The iris-ps TFJob's entry point: parameter-server training (Chief, PS and Worker replicas).

The chief is the coordinator of ParameterServerStrategy: it creates the model's variables on the
parameter servers, schedules training steps on the workers, and exports the SavedModel to
$KFGEN_MODEL_DIR/1 (the same signature as the multi-worker trainer's). Parameter servers and
workers only serve the cluster: they run until the job is over, and the training operator (or
`kfgen tfjob run-local`) stops them when the chief has succeeded, per its success policy.
"""

from __future__ import annotations

import argparse
import json
import os


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args(argv)
    steps = int(os.environ.get("KFGEN_STEPS", args.steps))
    model_dir = os.environ.get("KFGEN_MODEL_DIR", "model")  # a string: gs:// and s3:// stay URLs

    import tensorflow as tf  # loads here, after the arguments are checked

    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    if resolver.task_type in ("ps", "worker"):
        server = tf.distribute.Server(resolver.cluster_spec(), job_name=resolver.task_type, task_index=resolver.task_id,
                                      protocol=resolver.rpc_layer or "grpc", start=True)
        print(json.dumps({"serving": f"{resolver.task_type}-{resolver.task_id}"}), flush=True)
        server.join()
        return 0
    if resolver.task_type != "chief":
        print(f"ps_train needs a Chief, PS and Worker replicas (TF_CONFIG task: {resolver.task_type!r})", flush=True)
        return 2

    from trainer import data, model

    rows = data.drop_outliers(data.generate(), 3.0)
    train_rows, eval_rows = data.split(rows)
    trained = coordinate(tf, resolver, train_rows, steps)
    saved = model.export(tf.distribute.get_strategy(), trained, model_dir)
    print(json.dumps({"saved_model": saved, "eval_accuracy": round(model.accuracy(saved, eval_rows), 4)}), flush=True)
    return 0


def coordinate(tf, resolver, rows: list[list[float]], steps: int, batch: int = 32):
    """Schedule `steps` training steps on the workers; the variables live on the parameter servers."""
    import numpy as np

    from trainer.model import build_model

    strategy = tf.distribute.ParameterServerStrategy(resolver)
    coordinator = tf.distribute.coordinator.ClusterCoordinator(strategy)
    features = np.array([r[:-1] for r in rows], dtype=np.float32)
    labels = np.array([r[-1] for r in rows], dtype=np.int64)

    def dataset_fn():
        return tf.data.Dataset.from_tensor_slices((features, labels)).shuffle(len(rows), seed=1).repeat().batch(batch).prefetch(2)

    with strategy.scope():
        trained = build_model()
        optimizer = tf.keras.optimizers.Adam(learning_rate=0.01)
        optimizer.build(trained.trainable_variables)
    loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    iterator = iter(coordinator.create_per_worker_dataset(dataset_fn))

    @tf.function
    def train_step(iterator):
        def step(x, y):
            with tf.GradientTape() as tape:
                loss = loss_fn(y, trained(x, training=True))
            optimizer.apply_gradients(zip(tape.gradient(loss, trained.trainable_variables), trained.trainable_variables))
            return loss
        return strategy.run(step, args=next(iterator))

    for number in range(1, steps + 1):
        loss = coordinator.schedule(train_step, args=(iterator,))
        if number == 1 or number % 50 == 0 or number == steps:
            coordinator.join()
            print(json.dumps({"step": number, "loss": round(float(loss.fetch()), 4)}), flush=True)
    coordinator.join()
    return trained


if __name__ == "__main__":
    raise SystemExit(main())
