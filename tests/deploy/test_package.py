"""scripts/package: the release package holds exactly what the Functions host needs.

The `dist` fixture (conftest.py) packages once per session with a release musl build, or checks
the package that $B2B_DEPLOY_DIST names. Tests that change inputs (another host.json, a new
function folder, a bad policy) run scripts/package --skip-build on a copy of the project files
in a temporary directory, so the work tree is never touched.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import struct
import subprocess
import zipfile
from pathlib import Path, PurePosixPath

import pytest
from conftest import PACKAGE_SCRIPT, REPO_ROOT, function_folders, release_binary, run_package

ELF_MAGIC = b"\x7fELF"
EM_X86_64 = 0x3E
PT_INTERP = 3


def host_json() -> dict:
    return json.loads((REPO_ROOT / "host.json").read_text(encoding="utf-8"))


def executable_path() -> str:
    return host_json()["customHandler"]["description"]["defaultExecutablePath"]


def expected_files(functions: list[str], executable: str) -> set[str]:
    return {"host.json", "policy.json", executable} | {f"{name}/function.json" for name in functions}


def files_under(root: Path) -> set[str]:
    return {path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file()}


def elf_facts(path: Path) -> tuple[int, bool]:
    """(e_machine, has a PT_INTERP program header) of a 64-bit little-endian ELF file."""
    data = path.read_bytes()
    assert data[:4] == ELF_MAGIC, f"{path} is not an ELF file"
    assert data[4] == 2 and data[5] == 1, f"{path} is not a 64-bit little-endian ELF"
    (e_machine,) = struct.unpack_from("<H", data, 18)
    (e_phoff,) = struct.unpack_from("<Q", data, 32)
    e_phentsize, e_phnum = struct.unpack_from("<HH", data, 54)
    kinds = [struct.unpack_from("<I", data, e_phoff + i * e_phentsize)[0] for i in range(e_phnum)]
    return e_machine, PT_INTERP in kinds


def fake_project(tmp_path: Path, host: dict | None = None, extra_functions: dict[str, dict] | None = None) -> Path:
    """A copy of what scripts/package reads (the script, host.json, function folders), so a test
    can change them; the release binary is taken from the real target directory."""
    root = tmp_path / "project"
    (root / "scripts").mkdir(parents=True)
    shutil.copy2(PACKAGE_SCRIPT, root / "scripts" / "package")
    (root / "host.json").write_text(json.dumps(host or host_json(), indent=2), encoding="utf-8")
    for name in function_folders():
        (root / name).mkdir()
        shutil.copyfile(REPO_ROOT / name / "function.json", root / name / "function.json")
    for name, function in (extra_functions or {}).items():
        (root / name).mkdir()
        (root / name / "function.json").write_text(json.dumps(function), encoding="utf-8")
    # Not functions: tool and build folders, hidden folders.
    for name in ("node_modules", ".git", "target"):
        (root / name).mkdir()
        (root / name / "function.json").write_text("{}", encoding="utf-8")
    return root


def package_fake(root: Path, *args: str) -> subprocess.CompletedProcess:
    """scripts/package --skip-build in the copy, with the real release binary."""
    target_dir = release_binary().parents[2]  # <target-dir>/x86_64-unknown-linux-musl/release/b2b-signup
    env = {"CARGO_TARGET_DIR": str(target_dir)}
    return run_package("--skip-build", *args, cwd=root, script=root / "scripts" / "package", env=env)


# --- the package the session built ------------------------------------------------------------


def test_the_app_folder_holds_exactly_what_the_host_needs(dist):
    app = dist / "app"
    assert files_under(app) == expected_files(function_folders(), executable_path())
    assert not (app / "local.settings.json").exists()


def test_host_json_and_every_function_json_are_the_repository_files(dist):
    app = dist / "app"
    assert (app / "host.json").read_bytes() == (REPO_ROOT / "host.json").read_bytes()
    folders = function_folders()
    assert {"SignupHttp", "InviteQueue", "InvitePoison"} <= set(folders)
    for name in folders:
        assert (app / name / "function.json").read_bytes() == (REPO_ROOT / name / "function.json").read_bytes()


def test_the_executable_host_json_names_is_a_static_linux_x64_binary(dist):
    binary = dist / "app" / PurePosixPath(executable_path())
    assert binary.is_file()
    assert stat.S_IMODE(binary.stat().st_mode) == 0o755
    assert os.access(binary, os.X_OK)
    machine, dynamic = elf_facts(binary)
    assert machine == EM_X86_64
    assert not dynamic, "the binary needs a dynamic loader; the package must be static (musl)"


def test_the_packaged_binary_allocates_with_mimalloc(dist):
    # musl's own allocator costs 10-40 % more CPU per accepted sign-up (docs/PERFORMANCE.md, fix 9).
    binary = dist / "app" / PurePosixPath(executable_path())
    assert b"mimalloc" in binary.read_bytes(), "the musl build lost its global allocator"


def test_the_packaged_binary_holds_the_product_alone(dist):
    # The local Functions host (crates/funchost) is development-only: no subcommand starts
    # it, and none of its code is linked in (its banner, version tag and flags are absent),
    # nor its development identity provider (its path, key ids, banner and setting).
    binary = dist / "app" / PurePosixPath(executable_path())
    result = subprocess.run([str(binary), "--help"], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    commands = [line.split()[0] for line in result.stdout.split("Commands:")[1].split("Options:")[0].splitlines() if line.strip()]
    assert commands == ["serve", "requests", "policy", "site", "help"], result.stdout
    data = binary.read_bytes()
    host_only_strings = (
        b"funchost listening on",
        b"4.0.0-funchost",
        b"funchost: running",
        b"/.dev-identity",
        b"funchost-dev-",
        b"Development identity provider",
        b"B2B_HOST_DEV_IDENTITY_USER",
    )
    for host_only in host_only_strings:
        assert host_only not in data, host_only


def test_the_packaged_binary_accepts_the_packaged_policy(dist):
    app = dist / "app"
    result = subprocess.run(
        [str(app / PurePosixPath(executable_path())), "policy", "check", "policy.json"],
        cwd=app,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


def test_the_zip_is_the_app_folder_with_host_json_at_its_root_and_modes_kept(dist):
    app = dist / "app"
    with zipfile.ZipFile(dist / "b2b-signup.zip") as archive:
        infos = {info.filename: info for info in archive.infolist() if not info.is_dir()}
        assert set(infos) == files_under(app)
        assert "host.json" in infos
        for name, info in infos.items():
            assert archive.read(name) == (app / name).read_bytes(), name
            mode = stat.S_IMODE(info.external_attr >> 16)
            assert mode == stat.S_IMODE((app / name).stat().st_mode), f"{name}: mode {oct(mode)} in the zip"
        assert stat.S_IMODE(infos[executable_path()].external_attr >> 16) == 0o755


def test_the_package_is_small(dist):
    binary = dist / "app" / PurePosixPath(executable_path())
    # Measured: 7.9 MiB stripped (8,325,704 bytes), zip 3.5 MiB. The bound catches an unstripped
    # or debug build, which is several times larger.
    assert binary.stat().st_size < 20 * 1024 * 1024
    assert (dist / "b2b-signup.zip").stat().st_size < 10 * 1024 * 1024


# --- scripts/package on changed inputs ---------------------------------------------------------


def test_a_new_function_folder_is_packaged_without_any_list_to_update(tmp_path, built_binary, policy_file):
    timer = {"bindings": [{"type": "timerTrigger", "direction": "in", "name": "timer", "schedule": "0 */5 * * * *"}]}
    root = fake_project(tmp_path, extra_functions={"ZzProbeTimer": timer})
    out = tmp_path / "dist"
    result = package_fake(root, "--out", str(out), str(policy_file))
    assert result.returncode == 0, result.stderr
    expected = expected_files(function_folders() + ["ZzProbeTimer"], executable_path())
    assert files_under(out / "app") == expected
    assert json.loads((out / "app" / "ZzProbeTimer" / "function.json").read_text(encoding="utf-8")) == timer
    with zipfile.ZipFile(out / "b2b-signup.zip") as archive:
        assert "ZzProbeTimer/function.json" in archive.namelist()


def test_the_binary_goes_where_host_json_says(tmp_path, built_binary, policy_file):
    host = host_json()
    host["customHandler"]["description"]["defaultExecutablePath"] = "bin/handler"
    root = fake_project(tmp_path, host=host)
    out = tmp_path / "dist"
    result = package_fake(root, "--out", str(out), str(policy_file))
    assert result.returncode == 0, result.stderr
    assert files_under(out / "app") == expected_files(function_folders(), "bin/handler")
    assert os.access(out / "app" / "bin" / "handler", os.X_OK)


@pytest.mark.parametrize("path", ["../b2b-signup", "/usr/bin/b2b-signup", ""])
def test_an_executable_path_outside_the_app_is_refused(tmp_path, built_binary, policy_file, path):
    host = host_json()
    host["customHandler"]["description"]["defaultExecutablePath"] = path
    root = fake_project(tmp_path, host=host)
    result = package_fake(root, "--out", str(tmp_path / "dist"), str(policy_file))
    assert result.returncode != 0
    assert "defaultExecutablePath" in result.stderr


def test_without_a_policy_nothing_is_packaged(tmp_path, built_binary):
    root = fake_project(tmp_path)
    out = tmp_path / "dist"
    result = package_fake(root, "--out", str(out))
    assert result.returncode != 0
    assert "no policy file" in result.stderr
    assert not (out / "app").exists() and not (out / "b2b-signup.zip").exists()


def test_a_policy_the_binary_refuses_is_not_packaged_and_an_old_package_is_removed(tmp_path, built_binary, policy_file):
    root = fake_project(tmp_path)
    out = tmp_path / "dist"
    assert package_fake(root, "--out", str(out), str(policy_file)).returncode == 0
    bad = tmp_path / "bad-policy.json"
    bad.write_text(json.dumps({"defaultAction": "invite", "accessOptions": {}, "rules": []}), encoding="utf-8")
    result = package_fake(root, "--out", str(out), str(bad))
    assert result.returncode != 0
    assert "refused" in result.stderr
    assert not (out / "app").exists() and not (out / "b2b-signup.zip").exists()
