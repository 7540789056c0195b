"""kfgen: render one stack.yaml into a layered GitOps tree for an ML platform on Kubernetes."""

__version__ = "0.1.0"
