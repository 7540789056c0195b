"""The user's workloads as custom resources: TFJobs, SeldonDeployments, WorkflowTemplates.

Accelerator contract (what the accelerator Components patch, and what your own manifests need to
opt in): the object carries `kfgen.io/accelerator: <class>` (TFJobs: `accelerator.kfgen.io/<replica
type>: <class>`), its first container is the one that gets the device, and that container has
`resources.limits` and `resources.requests`. Node selector and tolerations of such pods belong to
the Component.
"""
