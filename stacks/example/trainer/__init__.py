"""The example's trainer: an iris-like classifier trained with MultiWorkerMirroredStrategy.

Entry points (the stack's TFJob and pipeline steps call them):
    python -m trainer.train              the TFJob: data, then distributed training, then a SavedModel
    python -m trainer.pipeline STEP      one pipeline step: load, clean, split, train, evaluate

Contract with the platform, all environment variables:
    TF_CONFIG          the cluster (set by the training operator, or by `kfgen tfjob run-local`)
    KFGEN_MODEL_DIR    where the SavedModel goes (<dir>/1/, the layout TensorFlow Serving reads)
    KFGEN_STEPS        training steps (overrides --steps)
    KFGEN_INPUTS       pipeline steps: folder with one sub-folder per input step
    KFGEN_OUTPUT       pipeline steps: the folder this step writes
"""
