"""The example's trainers: an iris-like classifier, trained with MultiWorkerMirroredStrategy (the
`iris` TFJob) or ParameterServerStrategy (the `iris-ps` TFJob).

Entry points (the stack's TFJobs and pipeline steps call them):
    python -m trainer.train              the iris TFJob: data, distributed training, a SavedModel
    python -m trainer.ps_train           the iris-ps TFJob: the chief trains on PS and workers, then exports
    python -m trainer.pipeline STEP      one pipeline step: load, clean, split, train, evaluate

Contract with the platform, all environment variables:
    TF_CONFIG              the cluster (set by the training operator, or by `kfgen tfjob run-local`)
    KFGEN_MODEL_DIR        where the SavedModel goes (<dir>/1/, the layout TensorFlow Serving reads)
    KFGEN_CHECKPOINT_DIR   checkpoints, restored at start (none without it)
    KFGEN_TENSORBOARD_DIR  the chief's TensorBoard logs (none without it)
    KFGEN_STEPS            training steps (overrides --steps)
    KFGEN_INPUTS           pipeline steps: folder with one sub-folder per input step
    KFGEN_OUTPUT           pipeline steps: the folder this step writes
The same seed gives the same weights (trainer.model.reproducible).
"""
