"""The model, its distributed training loop and its SavedModel export."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from trainer.data import CLASSES, FEATURES

BATCH_PER_REPLICA = 32


def strategy() -> tf.distribute.Strategy:
    """MultiWorkerMirroredStrategy when TF_CONFIG names a cluster, else the default strategy."""
    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def build_model() -> tf.keras.Model:
    return tf.keras.Sequential([
        tf.keras.Input(shape=(len(FEATURES),), name="features"),
        tf.keras.layers.Normalization(mean=[5.8, 3.05, 3.8, 1.2], variance=[0.7, 0.2, 3.1, 0.6]),
        tf.keras.layers.Dense(32, activation="relu"),
        tf.keras.layers.Dense(CLASSES),
    ])


def train(rows: list[list[float]], steps: int, seed: int = 1) -> tuple[tf.distribute.Strategy, tf.keras.Model]:
    """Train with a custom loop (Keras' fit takes no per-replica datasets under this strategy)."""
    tf.random.set_seed(seed)
    dist = strategy()
    features = np.array([r[:-1] for r in rows], dtype=np.float32)
    labels = np.array([r[-1] for r in rows], dtype=np.int64)
    global_batch = BATCH_PER_REPLICA * dist.num_replicas_in_sync

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        batch = context.get_per_replica_batch_size(global_batch)
        data = tf.data.Dataset.from_tensor_slices((features, labels)).shard(context.num_input_pipelines, context.input_pipeline_id)
        return data.shuffle(len(rows), seed=seed).repeat().batch(batch).prefetch(2)

    with dist.scope():
        model = build_model()
        optimizer = tf.keras.optimizers.Adam(learning_rate=0.01)
        loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")
    iterator = iter(dist.distribute_datasets_from_function(dataset_fn))

    @tf.function
    def train_step(batch):
        def step(x, y):
            with tf.GradientTape() as tape:
                loss = tf.nn.compute_average_loss(loss_fn(y, model(x, training=True)), global_batch_size=global_batch)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss
        return dist.reduce(tf.distribute.ReduceOp.SUM, dist.run(step, args=batch), axis=None)

    for number in range(1, steps + 1):
        loss = train_step(next(iterator))
        if number == 1 or number % 50 == 0 or number == steps:
            print(json.dumps({"step": number, "loss": round(float(loss), 4)}), flush=True)
    return dist, model


class Serving(tf.Module):
    """What TensorFlow Serving runs: features in, class probabilities and the class out."""

    def __init__(self, model: tf.keras.Model):
        super().__init__()
        self.model = model

    @tf.function(input_signature=[tf.TensorSpec([None, len(FEATURES)], tf.float32, name="features")])
    def serve(self, features):
        probabilities = tf.nn.softmax(self.model(features, training=False))
        return {"probabilities": probabilities, "classes": tf.argmax(probabilities, axis=-1)}


def is_chief(dist: tf.distribute.Strategy) -> bool:
    resolver = getattr(dist, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "chief" or (not has_chief and resolver.task_type == "worker" and resolver.task_id == 0)


def export(dist: tf.distribute.Strategy, model: tf.keras.Model, model_dir: Path) -> Path | None:
    """Every worker saves (the save runs collectives); only the chief's copy is kept, in
    <model_dir>/1 where TensorFlow Serving looks for version 1."""
    module = Serving(model)
    target = model_dir / "1"
    if is_chief(dist):
        tf.saved_model.save(module, str(target), signatures={"serving_default": module.serve})
        return target
    with tempfile.TemporaryDirectory() as scratch:
        tf.saved_model.save(module, scratch, signatures={"serving_default": module.serve})
    return None


def barrier(dist: tf.distribute.Strategy) -> None:
    """Wait until every replica gets here, so no worker outlives the chief's coordination service."""

    @tf.function
    def meet():
        return dist.reduce(tf.distribute.ReduceOp.SUM, dist.run(lambda: tf.constant(1.0)), axis=None)

    meet()


def accuracy(saved_model: Path, rows: list[list[float]]) -> float:
    serve = tf.saved_model.load(str(saved_model)).signatures["serving_default"]
    classes = serve(features=tf.constant([r[:-1] for r in rows], dtype=tf.float32))["classes"].numpy()
    return float(np.mean(classes == np.array([r[-1] for r in rows])))
