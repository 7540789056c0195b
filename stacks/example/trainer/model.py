"""The model, its distributed training loop and its SavedModel export.

Paths are strings joined with "/", never pathlib.Path: in the cluster they are gs:// or s3:// URLs,
which TensorFlow's file system reads and writes (and Path would turn into a local gs:/ folder).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf

from trainer.data import CLASSES, FEATURES

BATCH_PER_REPLICA = 32
CHECKPOINT_EVERY = 50
# What TensorBoard's scalars plugin reads (tf.summary.scalar needs the tensorboard package, this does not).
SCALAR = tf.compat.v1.SummaryMetadata(plugin_data=tf.compat.v1.SummaryMetadata.PluginData(plugin_name="scalars"))


def reproducible(seed: int) -> None:
    """Same seed, same weights: Python's, NumPy's, TensorFlow's and Keras 3's own seeds (its
    initialisers draw from Keras' seed generator, not from tf.random), and deterministic ops."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


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
    """Train with a custom loop (Keras' fit takes no per-replica datasets under this strategy).
    With KFGEN_CHECKPOINT_DIR it resumes from the latest checkpoint there and saves one every
    CHECKPOINT_EVERY steps; with KFGEN_TENSORBOARD_DIR the chief writes the loss for TensorBoard."""
    reproducible(seed)
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
        optimizer.build(model.trainable_variables)  # its variables exist before a checkpoint is restored
        loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")
    iterator = iter(dist.distribute_datasets_from_function(dataset_fn))
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    checkpoints = Checkpoints(dist, tf.train.Checkpoint(model=model, optimizer=optimizer, step=step))
    summaries = summary_writer(dist)

    @tf.function
    def train_step(batch):
        def step(x, y):
            with tf.GradientTape() as tape:
                loss = tf.nn.compute_average_loss(loss_fn(y, model(x, training=True)), global_batch_size=global_batch)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss
        return dist.reduce(tf.distribute.ReduceOp.SUM, dist.run(step, args=batch), axis=None)

    if int(step.numpy()):
        print(json.dumps({"resumed_at_step": int(step.numpy())}), flush=True)
    for number in range(int(step.numpy()) + 1, steps + 1):
        loss = train_step(next(iterator))
        step.assign(number)
        if number == 1 or number % 50 == 0 or number == steps:
            print(json.dumps({"step": number, "loss": round(float(loss), 4)}), flush=True)
            with summaries.as_default():
                tf.summary.write("loss", tf.cast(loss, tf.float32), step=number, metadata=SCALAR)
        if number % CHECKPOINT_EVERY == 0 or number == steps:
            checkpoints.save(number)
    summaries.close()
    checkpoints.close()
    return dist, model


class Checkpoints:
    """Checkpoints in KFGEN_CHECKPOINT_DIR (none without it), restored at start. Every worker saves
    (saving runs collectives); only the chief's copy is kept."""

    def __init__(self, dist: tf.distribute.Strategy, checkpoint: tf.train.Checkpoint):
        folder = os.environ.get("KFGEN_CHECKPOINT_DIR")
        self.manager = None
        self.scratch = None
        if not folder:
            return
        latest = tf.train.latest_checkpoint(folder)
        if latest:
            checkpoint.restore(latest).assert_existing_objects_matched()
        if not is_chief(dist):
            self.scratch = folder = tempfile.mkdtemp(prefix="checkpoints-")
        self.manager = tf.train.CheckpointManager(checkpoint, folder, max_to_keep=2)

    def save(self, number: int) -> None:
        if self.manager:
            self.manager.save(checkpoint_number=number)

    def close(self) -> None:
        if self.scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)


def summary_writer(dist: tf.distribute.Strategy):
    """The chief's TensorBoard writer on KFGEN_TENSORBOARD_DIR; a no-op elsewhere."""
    folder = os.environ.get("KFGEN_TENSORBOARD_DIR")
    if folder and is_chief(dist):
        return tf.summary.create_file_writer(folder)
    return tf.summary.create_noop_writer()


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


def export(dist: tf.distribute.Strategy, model: tf.keras.Model, model_dir: str) -> str | None:
    """Every worker saves (the save runs collectives); only the chief's copy is kept, in
    <model_dir>/1 where TensorFlow Serving looks for version 1."""
    module = Serving(model)
    target = f"{model_dir.rstrip('/')}/1"
    if is_chief(dist):
        tf.saved_model.save(module, target, signatures={"serving_default": module.serve})
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


def accuracy(saved_model: str, rows: list[list[float]]) -> float:
    serve = tf.saved_model.load(saved_model).signatures["serving_default"]
    classes = serve(features=tf.constant([r[:-1] for r in rows], dtype=tf.float32))["classes"].numpy()
    return float(np.mean(classes == np.array([r[-1] for r in rows])))
