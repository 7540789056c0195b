"""A stand-in for a TFJob replica in the run-local tests: it follows a plan, one action per attempt.

PLAN (env, JSON): {"worker-0": [action, ...], ...}; attempt N runs action N (the last one repeats).
Actions: an exit code; "hang" (sleep until stopped, with a grandchild that sleeps too); "kill"
(SIGKILL itself: a container's exit code 137); "wait:<replica>" (wait until that replica has
exited, then 1 s more, then exit 0).
Its name comes from TF_CONFIG's task ("only" without TF_CONFIG); it records attempts, PIDs and
exits in $KFGEN_CHECKPOINT_DIR (kept across restarts, like a real checkpoint folder), and prints
what the tests check.
"""

import json
import os
import signal
import subprocess
import sys
import time

config = json.loads(os.environ["TF_CONFIG"]) if "TF_CONFIG" in os.environ else None
name = f"{config['task']['type']}-{config['task']['index']}" if config else "only"
state = os.environ["KFGEN_CHECKPOINT_DIR"]
counter = os.path.join(state, f"{name}.attempts")
attempt = int(open(counter).read()) + 1 if os.path.exists(counter) else 1
with open(counter, "w") as handle:
    handle.write(str(attempt))
plan = json.loads(os.environ.get("PLAN", "{}")).get(name, [0])
action = plan[min(attempt, len(plan)) - 1]
with open(os.path.join(state, f"{name}.pids"), "a") as handle:
    handle.write(f"{os.getpid()}\n")
print(f"{name} attempt {attempt}: {action}", flush=True)
print(f"TF_CONFIG={os.environ.get('TF_CONFIG', 'unset')}", flush=True)


def exit_with(code):
    open(os.path.join(state, f"{name}.exited"), "w").write(str(code))
    sys.exit(code)


if action == "hang":
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    with open(os.path.join(state, f"{name}.pids"), "a") as handle:
        handle.write(f"{child.pid}\n")
    print(f"{name} waiting for the others", flush=True)
    time.sleep(600)
elif action == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
elif isinstance(action, str) and action.startswith("wait:"):
    while not os.path.exists(os.path.join(state, f"{action[5:]}.exited")):
        time.sleep(0.05)
    time.sleep(1)
    exit_with(0)
else:
    exit_with(int(action))
