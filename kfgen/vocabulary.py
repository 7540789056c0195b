"""Every name kfgen writes into objects and trees, in one place: labels, annotations, API versions
and the output tree's file names. A name used in two modules is defined here, once."""

from __future__ import annotations

# --- labels kfgen puts on what it renders --------------------------------------------------------
MANAGED_BY = "app.kubernetes.io/managed-by"
PART_OF = "app.kubernetes.io/part-of"
APP_NAME = "app.kubernetes.io/name"
COMPONENT_LABEL = "kfgen.io/component"  # the base an object comes from: a component, `workloads` or `cluster`
ENVIRONMENT_LABEL = "kfgen.io/environment"  # on Argo CD objects
CLUSTER_LABEL = "kfgen.io/cluster"  # on the Applications an ApplicationSet makes for a fleet's clusters
WORKLOAD_LABEL = "kfgen.io/workload"  # the stack workload an object or pod belongs to
ACCELERATOR_LABEL = "kfgen.io/accelerator"  # the accelerator class an object asks for (its first container gets it)
REPLICA_ACCELERATOR_PREFIX = "accelerator.kfgen.io/"  # TFJobs: per replica type, e.g. accelerator.kfgen.io/worker
NOTEBOOK_PROFILES_LABEL = "kfgen.io/notebook-accelerators"  # the hub ConfigMap the accelerator Components add to
STORAGE_LABEL = "kfgen.io/storage"  # PVCs whose storage class the cloud Component sets

# --- annotations --------------------------------------------------------------------------------
WAIVER_PREFIX = "waivers.kfgen.io/"  # waivers.kfgen.io/<policy>: <reason>
RISK_ANNOTATION_PREFIX = "risks.kfgen.io/"  # risks.kfgen.io/<risk>: <reason> (see kfgen.risks)
POD_SECURITY_REASON = "kfgen.io/pod-security-reason"  # on a namespace that enforces less than `restricted`: why
CHECKOV_SKIP = "checkov.io/skip"  # checkov.io/skip<N>: <check>=<reason>
SYNC_WAVE = "argocd.argoproj.io/sync-wave"
SYNC_OPTIONS = "argocd.argoproj.io/sync-options"
COMPARE_OPTIONS = "argocd.argoproj.io/compare-options"
MANIFEST_GENERATE_PATHS = "argocd.argoproj.io/manifest-generate-paths"
ARGOCD_HOOK = "argocd.argoproj.io/hook"
ARGOCD_HOOK_DELETE_POLICY = "argocd.argoproj.io/hook-delete-policy"
ARGOCD_FINALIZER = "resources-finalizer.argocd.argoproj.io/foreground"  # the domain-qualified name: the bare one draws an API warning
KEEP_ON_DELETE = ("Prune=false", "Delete=false")  # sync options of CRDs and Namespaces: never pruned, never deleted with their Application
IN_CLUSTER = "https://kubernetes.default.svc"  # the cluster Argo CD runs in (where Applications live)

# --- environment variables kfgen gives the code it runs (in the cluster and locally) -------------
MODEL_DIR_ENV = "KFGEN_MODEL_DIR"  # where a training job writes its model
STEPS_ENV = "KFGEN_STEPS"  # run-local --steps
CHECKPOINT_DIR_ENV = "KFGEN_CHECKPOINT_DIR"  # run-local: checkpoints
TENSORBOARD_DIR_ENV = "KFGEN_TENSORBOARD_DIR"  # run-local: TensorBoard logs
PIPELINE_INPUTS_ENV = "KFGEN_INPUTS"  # a pipeline step: its inputs' folder
PIPELINE_OUTPUT_ENV = "KFGEN_OUTPUT"  # a pipeline step: its output folder

# --- API versions -------------------------------------------------------------------------------
KUSTOMIZATION_API = "kustomize.config.k8s.io/v1beta1"
KUSTOMIZE_COMPONENT_API = "kustomize.config.k8s.io/v1alpha1"
ARGOCD_API = "argoproj.io/v1alpha1"
ARGO_WORKFLOWS_API = "argoproj.io/v1alpha1"
RBAC_API = "rbac.authorization.k8s.io/v1"
ADMISSION_API = "admissionregistration.k8s.io/v1"
CRD_API = "apiextensions.k8s.io/v1"
NETWORKING_API = "networking.k8s.io/v1"

# --- the output tree ----------------------------------------------------------------------------
PROVENANCE = "provenance.json"
KUSTOMIZATION = "kustomization.yaml"
BASES = "base"  # base/<component>/
PROFILE_COMPONENTS = "components"  # components/<cloud>/, components/<cloud>-<class>/
ENVIRONMENTS = "envs"  # envs/<env>/ (+ overrides/, extra/<component>/)
OWN_PATCHES = "yours/"  # envs/<env>/overrides/yours/<component>/: the patches an environment adds
RENDERED = "rendered"  # rendered/<env>/<base>/<namespace>/<kind>-<name>.yaml
ARGOCD = "argocd"  # argocd/<env>/
ARGOCD_APPS = "apps"  # argocd/<env>/apps/: what the environment's root Application syncs
ARGOCD_PROJECTS = "projects"  # argocd/<env>/projects/: the AppProjects, applied once by an admin (never synced by the root)
ARGOCD_ROOT = "root.yaml"  # argocd/<env>/root.yaml: the app of apps, applied once by an admin
WORKLOADS_BASE = "workloads"  # the base holding the workload namespace
CLUSTER_BASE = "cluster"  # the base name of cluster-level objects a cloud Component adds
