"""Build the cluster tier's programs into a cache outside the repository, keyed by name and version.

    python tests/cluster/build.py [--only NAME ...] [--list] [--jobs N]

Everything comes from the package registries as ordinary dependencies (Go modules from the module
proxy, JupyterHub from PyPI, configurable-http-proxy from npm); no upstream source is kept in the
repository. Each Go program is built from a small wrapper module generated here, in the cache: its
go.mod requires the upstream module at the pinned version and mirrors the replace and exclude
directives of upstream's own go.mod (Kubernetes' `./staging/...` replaces become the published
`v0.<minor>.<patch>` modules), so the build resolves what upstream's does.

The cache is $KFGEN_CLUSTER_CACHE (default ~/.cache/kfgen-cluster): `<cache>/<name>-<version>/bin/...`,
a `.built` stamp written last. A target whose stamp exists (for the hub: and names the packages it
was built from, which are those of PROGRAMS) is reused without touching the network.
Where the module proxy does not serve a pinned version, the next candidate of the target is built
and its folder says which version it is (the README lists these).

Without Go (or node for the proxy): outside CI one line says what is missing and the exit code is 0
(the tier skips); in CI (CI set) the exit code is 3.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[2] / "shared"
LDFLAGS = "-s -w"


def cache_root() -> Path:
    return Path(os.environ.get("KFGEN_CLUSTER_CACHE") or "~/.cache/kfgen-cluster").expanduser()


KUBE_MAIN = """\
// One binary, two upstream commands: link time is paid once.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	commands := map[string]func() *cobra.Command{
		"kube-apiserver":          apiserver.NewAPIServerCommand,
		"kube-controller-manager": controllermanager.NewControllerManagerCommand,
	}
	if len(os.Args) < 2 || commands[os.Args[1]] == nil {
		fmt.Fprintln(os.Stderr, "usage: kube kube-apiserver|kube-controller-manager [flags]")
		os.Exit(2)
	}
	cmd := commands[os.Args[1]]()
	cmd.SetArgs(os.Args[2:])
	os.Exit(cli.Run(cmd))
}
"""

ETCD_MAIN = """\
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
"""


@dataclass(frozen=True)
class GoProgram:
    """A Go program: upstream module, candidate versions (pinned first), binaries {name: package}."""

    name: str
    module: str
    versions: tuple[str, ...]
    binaries: dict[str, str]
    main: str = ""  # a wrapper main package (binaries then map to ".")
    checks: tuple[tuple[str, ...], ...] = ()  # argument lists that must exit 0 (usually --help)
    why_fallback: str = ""
    ldflags: str = ""  # more linker flags (version stamps)

    def folder(self, version: str) -> Path:
        return cache_root() / f"{self.name}-{version}"


@dataclass(frozen=True)
class HubProgram:
    """JupyterHub in a venv with the hub image's pins, and configurable-http-proxy from npm."""

    name: str
    version: str
    packages: tuple[str, ...]
    constraints: Path
    proxy: str
    checks: tuple[tuple[str, ...], ...] = field(default=())

    def folder(self, version: str) -> Path:
        return cache_root() / f"{self.name}-{version}"


# The longest builds first, so that two side by side finish together.
PROGRAMS: dict[str, GoProgram | HubProgram] = {p.name: p for p in [
    GoProgram("kube", "k8s.io/kubernetes", ("v1.31.14",), {"kube": "."}, main=KUBE_MAIN,
              # What `make` stamps in: clients read the version from /version.
              ldflags=" ".join(f"-X k8s.io/component-base/version.{k}={v}" for k, v in
                               {"gitVersion": "v1.31.14", "gitMajor": "1", "gitMinor": "31", "gitTreeState": "clean"}.items()),
              checks=(("kube-apiserver", "--help"), ("kube-controller-manager", "--help"))),
    GoProgram("training-operator", "github.com/kubeflow/training-operator", ("v1.8.1",),
              {"training-operator": "github.com/kubeflow/training-operator/cmd/training-operator.v1"}, checks=(("--help",),)),
    GoProgram("workflow-controller", "github.com/argoproj/argo-workflows/v3", ("v3.6.19", "v3.6.18"),
              {"workflow-controller": "github.com/argoproj/argo-workflows/v3/cmd/workflow-controller"}, checks=(("--help",),),
              why_fallback="v3.6.18..v3.6.19 changes no RBAC or CRD (three cherry-picked fixes)"),
    GoProgram("seldon-operator", "github.com/seldonio/seldon-core/operator", ("v1.17.1", "v1.16.0"),
              {"seldon-manager": "github.com/seldonio/seldon-core/operator"}, checks=(("--help",),),
              why_fallback="operator/v1.16.0 is the nearest Apache-2.0 release the module proxy serves"),
    # Kubernetes 1.31 is tested with etcd 3.5; v3.5.17 is the release nearest its own etcd image.
    GoProgram("etcd", "go.etcd.io/etcd/server/v3", ("v3.5.17",), {"etcd": "."}, main=ETCD_MAIN, checks=(("--version",),)),
    GoProgram("helm", "helm.sh/helm/v3", ("v3.22.0",), {"helm": "helm.sh/helm/v3/cmd/helm"}, checks=(("version",),)),
    # What the rendered jupyterhub_config.py uses: KubeSpawner, OAuthenticator's github and
    # generic-oauth, and the idle culler it runs as a hub service (`python3 -m jupyterhub_idle_culler`).
    HubProgram("jupyterhub", "5.5.0", ("jupyterhub==5.5.0", "jupyterhub-kubespawner==7.0.0", "oauthenticator==17.4.0",
                                       "jupyterhub-idle-culler==1.4.0"),
               SHARED / "upstream-installs" / "jupyterhub" / "4.4.0" / "hub-requirements.txt", "configurable-http-proxy@5.2.0",
               checks=(("venv/bin/jupyterhub", "--version"), ("proxy/node_modules/.bin/configurable-http-proxy", "--version"))),
]}


class Missing(Exception):
    """A toolchain this machine lacks."""


class BuildFailed(Exception):
    """A step failed; the message names it."""


def stamp(program: GoProgram | HubProgram) -> str:
    """What a build's `.built` stamp holds: for the hub, what its venv was made of (its packages, the
    image's pins, the proxy), so that a change to any of them builds it again; nothing for Go programs,
    whose folder names their version."""
    if isinstance(program, GoProgram):
        return ""
    pins = program.constraints.read_text() if program.constraints.is_file() else ""
    return json.dumps({"packages": list(program.packages), "pins": hashlib.sha256(pins.encode()).hexdigest(), "proxy": program.proxy},
                      sort_keys=True) + "\n"


def built(program: GoProgram | HubProgram) -> Path | None:
    """The cache folder of a complete build of the program (pinned version first), or None."""
    versions = program.versions if isinstance(program, GoProgram) else (program.version,)
    for version in versions:
        folder = program.folder(version)
        if (folder / ".built").is_file() and (folder / ".built").read_text() == stamp(program):
            return folder
    return None


def folder(name: str) -> Path | None:
    """The cache folder of a built program by its name in PROGRAMS (e.g. "jupyterhub"), or None."""
    return built(PROGRAMS[name])


def binary(name: str) -> Path | None:
    """Path of a built binary by name (e.g. "kube", "etcd", "workflow-controller"), or None."""
    for program in PROGRAMS.values():
        if isinstance(program, GoProgram) and name in program.binaries:
            folder = built(program)
            return folder / "bin" / name if folder else None
    return None


# --- running things ------------------------------------------------------------------------------

_OUTPUT = threading.local()  # a program built on a worker thread keeps its lines until it is done
_PRINT = threading.Lock()


def say(message: str) -> None:
    lines = getattr(_OUTPUT, "lines", None)
    if lines is not None:
        lines.append(message)
        return
    with _PRINT:
        print(message, flush=True)


def run(args: list[str], cwd: Path | None = None, env: dict | None = None, quiet: bool = True) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-25:])
        raise BuildFailed(f"{' '.join(args[:4])} ... exited {done.returncode}:\n{tail}")
    return done.stdout


def go_env() -> dict[str, str]:
    env = dict(os.environ)
    # Static binaries, no C toolchain; never download another Go toolchain.
    env.update(CGO_ENABLED="0", GOTOOLCHAIN="local", GOFLAGS="-mod=mod", GOWORK="off")
    return env


def go() -> str:
    path = shutil.which("go")
    if not path:
        raise Missing("go (the Go toolchain) is not on PATH")
    return path


# --- Go programs ---------------------------------------------------------------------------------

def upstream_gomod(module: str, version: str) -> str | None:
    """The text of module@version's go.mod from the module proxy, or None when it is not served."""
    done = subprocess.run([go(), "mod", "download", "-json", f"{module}@{version}"],
                          capture_output=True, text=True, env=go_env(), cwd=cache_root())
    info = json.loads(done.stdout or "{}")
    if done.returncode != 0 or "GoMod" not in info:
        return None
    return Path(info["GoMod"]).read_text()


def directives(gomod: str, word: str) -> list[str]:
    """The lines of a go.mod directive (`replace`, `exclude`), from one-line and block forms."""
    lines, block = [], False
    for raw in gomod.splitlines():
        line = raw.split("//")[0].strip()
        if block:
            if line == ")":
                block = False
            elif line:
                lines.append(line)
        elif line == f"{word} (":
            block = True
        elif line.startswith(f"{word} "):
            lines.append(line[len(word) + 1:].strip())
    return lines


def go_version(gomod: str) -> str:
    match = re.search(r"^go (\S+)", gomod, re.M)
    return match.group(1) if match else "1.22"


def published_versions(module: str) -> list[str]:
    done = subprocess.run([go(), "list", "-m", "-versions", module], capture_output=True, text=True, env=go_env(),
                          cwd=cache_root())
    return done.stdout.split()[1:] if done.returncode == 0 else []


NOT_SERVED = re.compile(r"(\S+)@(v\S+): reading \S+/@v/\S+: (?:403|404|410)")


def earlier_patch(module: str, want: str) -> str | None:
    """The newest patch of `want`'s minor below it that the module proxy lists, or None."""
    minor, _, patch = want.rpartition(".")
    served = [v for v in published_versions(module) if v.rpartition(".")[0] == minor and v.rpartition(".")[2].isdigit()]
    earlier = [v for v in served if int(v.rpartition(".")[2]) < int(patch)]
    return max(earlier, key=lambda v: int(v.rpartition(".")[2])) if earlier else None


def required_version(gomod: str, module: str) -> str | None:
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", gomod, re.M)
    return match.group(1) if match else None


def mirrored_replaces(program: GoProgram, version: str, gomod: str) -> list[str]:
    """Upstream's replace directives for our wrapper. A replace by a folder of upstream's repository
    becomes the published module: the version upstream requires (etcd's siblings), or for
    Kubernetes' staging modules (required as v0.0.0) `v0.<minor>.<patch>` of the same release.
    A folder replace of a module upstream does not require is a guard, and has no effect here."""
    out = []
    for line in directives(gomod, "replace"):
        left, _, right = (part.strip() for part in line.partition("=>"))
        if not right.startswith((".", "/")):
            out.append(f"{left} => {right}")
            continue
        module = left.split()[0]
        required = required_version(gomod, module)
        if required is None or required != "v0.0.0":
            continue  # upstream requires the published version (or nothing: a guard against a dependency)
        out.append(f"{module} => {module} v0{version[2:]}")
    return out


def resolve(src: Path, args: list[str], env: dict) -> None:
    """Run a resolving go command; a replaced module whose version the module proxy does not serve
    (it holds most, not all, of Kubernetes' staging modules at each patch) falls back to the newest
    earlier patch it lists, said on one line."""
    for _ in range(20):
        try:
            run(args, cwd=src, env=env)
            return
        except BuildFailed as failed:
            match = NOT_SERVED.search(str(failed))
            gomod = (src / "go.mod").read_text()
            line = re.compile(rf"^(\t{re.escape(match.group(1))} => \S+) {re.escape(match.group(2))}$", re.M) if match else None
            if not match or not line or not line.search(gomod):
                raise
            fallback = earlier_patch(match.group(1), match.group(2))
            if fallback is None:
                raise
            say(f"    {match.group(1)} {match.group(2)} is not served by the module proxy: using {fallback}")
            (src / "go.mod").write_text(line.sub(rf"\1 {fallback}", gomod))
    raise BuildFailed(f"{' '.join(args)}: too many versions not served")


def build_go(program: GoProgram) -> Path:
    cache_root().mkdir(parents=True, exist_ok=True)
    for version in program.versions:
        gomod = upstream_gomod(program.module, version)
        if gomod is not None:
            break
        say(f"    {program.module}@{version} is not served by the module proxy")
    else:
        raise BuildFailed(f"no version of {program.module} among {', '.join(program.versions)} is served by the module proxy")
    if version != program.versions[0]:
        say(f"    building {version} instead of {program.versions[0]}: {program.why_fallback}")
    folder = program.folder(version)
    src = folder / "src"
    shutil.rmtree(folder, ignore_errors=True)
    src.mkdir(parents=True)
    lines = [f"module kfgen.test/{program.name}", "", f"go {go_version(gomod)}", "", f"require {program.module} {version}", ""]
    replaces = mirrored_replaces(program, version, gomod)
    if replaces:
        lines += ["replace (", *[f"\t{r}" for r in replaces], ")", ""]
    excludes = directives(gomod, "exclude")
    if excludes:
        lines += ["exclude (", *[f"\t{e}" for e in excludes], ")", ""]
    (src / "go.mod").write_text("\n".join(lines))
    if program.main:
        (src / "main.go").write_text(program.main)
    env = go_env()
    timed("download", lambda: resolve(src, [go(), "get", f"{program.module}@{version}"], env))
    if program.main:
        timed("tidy", lambda: resolve(src, [go(), "mod", "tidy"], env))
    for name, package in program.binaries.items():
        timed(f"compile {name}", lambda: run([go(), "build", "-trimpath", f"-ldflags={LDFLAGS} {program.ldflags}".strip(), "-o", str(folder / "bin" / name),
                                             package], cwd=src, env=env))
    for args in program.checks:
        for name in program.binaries:
            run([str(folder / "bin" / name), *args], env={**os.environ, "HOME": str(folder)})
    return folder


# --- JupyterHub ----------------------------------------------------------------------------------

def build_hub(program: HubProgram) -> Path:
    npm = shutil.which("npm")
    if not npm:
        raise Missing("npm (for configurable-http-proxy) is not on PATH")
    if not program.constraints.is_file():
        raise Missing(f"{program.constraints} (the hub image's pins, from ../shared)")
    folder = program.folder(program.version)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    # Only the pins of what the hub, KubeSpawner and OAuthenticator need: the image's other extras
    # (psycopg2, pycurl, LDAP...) need C headers and are not used here.
    pins = [line.split("#")[0].strip() for line in program.constraints.read_text().splitlines()]
    (folder / "constraints.txt").write_text("\n".join(p for p in pins if p) + "\n")
    venv = folder / "venv"
    timed("venv", lambda: run([sys.executable, "-m", "venv", str(venv)]))
    timed("pip install", lambda: run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                                      *program.packages, "-c", str(folder / "constraints.txt")]))
    timed("npm install", lambda: run([npm, "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(folder / "proxy"),
                                      program.proxy]))
    for args in program.checks:
        run([str(folder / args[0]), *args[1:]])
    return folder


# --- the command ---------------------------------------------------------------------------------

def timed(step: str, fn) -> None:
    start = time.monotonic()
    fn()
    say(f"    {step}: {time.monotonic() - start:.0f}s")


def build_one(program: GoProgram | HubProgram) -> None:
    """Build one program, printing its lines together when it is done (builds run side by side)."""
    start = time.monotonic()
    say(f"{program.name}: building")
    _OUTPUT.lines = []
    try:
        folder = build_go(program) if isinstance(program, GoProgram) else build_hub(program)
        (folder / ".built").write_text(stamp(program))
        say(f"{program.name}: built in {folder} ({time.monotonic() - start:.0f}s)")
    finally:
        lines, _OUTPUT.lines = _OUTPUT.lines, None
        if lines:  # each line says whose it is: another build's lines may come in between
            say("\n".join(line if line.startswith(f"{program.name}: ") else f"{program.name}: {line.strip()}" for line in lines))


def build(names: list[str], jobs: int) -> int:
    total = time.monotonic()
    todo = [PROGRAMS[n] for n in names if built(PROGRAMS[n]) is None]
    if any(isinstance(p, GoProgram) for p in todo):
        go()  # says what is missing before anything starts
    if any(isinstance(p, HubProgram) for p in todo) and not shutil.which("npm"):
        raise Missing("npm (for configurable-http-proxy) is not on PATH")
    for name in names:
        if PROGRAMS[name] not in todo:
            say(f"{name}: cached in {built(PROGRAMS[name])}")
    # A Go build keeps two cores busy only part of the time (links are single-threaded, package
    # graphs narrow): two builds side by side take about a third less time on 2 cores.
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for future in [pool.submit(build_one, program) for program in todo]:
            future.result()  # the first failure, after the others ended
    say(f"cluster programs ready in {cache_root()} ({time.monotonic() - total:.1f}s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=sorted(PROGRAMS), help="build only these")
    parser.add_argument("--list", action="store_true", help="print each program's cache folder (or 'not built') and exit")
    parser.add_argument("--jobs", type=int, default=2, help="programs built side by side (default 2)")
    args = parser.parse_args(argv)
    if args.list:
        for name, program in PROGRAMS.items():
            say(f"{name}: {built(program) or 'not built'}")
        return 0
    try:
        return build(args.only or list(PROGRAMS), args.jobs)
    except Missing as missing:
        say(f"cluster tier: {missing}; not built")
        return 3 if os.environ.get("CI") else 0
    except BuildFailed as failed:
        say(f"cluster tier: build failed: {failed}")
        return 3


if __name__ == "__main__":
    sys.exit(main())
