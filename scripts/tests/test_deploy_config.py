"""dfx.json and icp.yaml describe exactly the canisters that
scripts/build_canisters.sh builds (all but the worker, which the task
manager spawns), build each with that script by name, and read the module
where the script leaves it; and one assets canister, the chat UI built into
frontend/app/dist. Nothing is built here."""
import json
import os
import shlex
import subprocess

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = "scripts/build_canisters.sh"
# Spawned by the task manager from the module uploaded to it
# (scripts/upload_worker.sh), never deployed by a tool.
NOT_DEPLOYED = {"worker"}
# The chat UI's assets canister and the directory Vite builds.
ASSETS = "chat_ui"
ASSETS_DIR = "frontend/app/dist"


def built():
    """name -> module path (relative to the project), as the script lists them."""
    out = subprocess.run(["bash", BUILD, "--list"], cwd=ROOT, check=True, capture_output=True, text=True)
    return dict(line.split() for line in out.stdout.splitlines())


def deployable():
    return {n: p for n, p in built().items() if n not in NOT_DEPLOYED}


def assert_builds_one(command, name):
    """`command` runs the build script for `name` alone."""
    argv = shlex.split(command)
    assert argv == [BUILD, name], command
    assert os.access(os.path.join(ROOT, argv[0]), os.X_OK), f"{argv[0]} is not an executable file"


def test_the_script_lists_every_canister_at_target_canisters():
    assert built() == {n: f"target/canisters/{n}.wasm" for n in ["task_manager", "worker", "example_caller"]}


def test_the_script_refuses_an_unknown_canister():
    out = subprocess.run(["bash", BUILD, "task_manager", "nope"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 2
    assert "'nope'" in out.stderr and "task_manager worker example_caller" in out.stderr


def test_dfx_json():
    with open(os.path.join(ROOT, "dfx.json")) as f:
        dfx = json.load(f)
    canisters = dict(dfx["canisters"])
    ui = canisters.pop(ASSETS)
    assert ui["type"] == "assets"
    assert ui["source"] == [ASSETS_DIR]
    (build,) = ui["build"]
    assert os.access(os.path.join(ROOT, build), os.X_OK), f"{build} is not an executable file"
    # The build writes config.json from CANISTER_ID_TASK_MANAGER, which dfx
    # exports only to dependents.
    assert ui["dependencies"] == ["task_manager"]
    assert set(canisters) == set(deployable())
    for name, c in canisters.items():
        assert c["type"] == "custom"
        assert_builds_one(c["build"], name)
        assert c["wasm"] == deployable()[name]
        assert os.path.isfile(os.path.join(ROOT, c["candid"])), c["candid"]
    # dfx exports CANISTER_ID_TASK_MANAGER to the example's build only as a
    # dependency.
    assert canisters["example_caller"]["dependencies"] == ["task_manager"]


def test_icp_yaml():
    with open(os.path.join(ROOT, "icp.yaml")) as f:
        icp = yaml.safe_load(f)
    canisters = {c["name"]: c for c in icp["canisters"]}
    assert len(canisters) == len(icp["canisters"])
    ui = canisters.pop(ASSETS)
    assert ui["recipe"]["type"].startswith("@dfinity/static-site@v"), ui["recipe"]["type"]
    assert ui["recipe"]["configuration"]["dir"] == ASSETS_DIR
    assert set(canisters) == set(deployable())
    for name, c in canisters.items():
        (step,) = c["build"]["steps"]
        assert step["type"] == "script"
        build, copy = step["commands"]
        assert_builds_one(build, name)
        # icp-cli takes the module from $ICP_WASM_OUTPUT_PATH.
        assert shlex.split(copy, posix=False) == ["cp", deployable()[name], '"$ICP_WASM_OUTPUT_PATH"'], copy
        # Installed without an argument: the example finds the task manager
        # in PUBLIC_CANISTER_ID:task_manager, which icp deploy sets.
        assert "init_args" not in c
