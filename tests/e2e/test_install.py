"""systemd/install.sh in a throwaway Debian root (debootstrap), never on this machine's /.

The root is built once (debootstrap bookworm, minbase + python3-venv + systemd)
and cached as a tarball under .cache/debootstrap (gitignored; HALL_EDGE_TEST_CACHE
moves it); each run unpacks a fresh copy. The project goes in as a wheel built
from this tree, with --no-deps: the point is the install, the units and the
layout, not PyPI.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow

SUITE = "bookworm"  # Raspberry Pi OS 12 is bookworm too
INCLUDE = "python3,python3-venv,systemd,udev"
CACHE = Path(os.environ.get("HALL_EDGE_TEST_CACHE", ROOT / ".cache")) / "debootstrap"
TARBALL = CACHE / f"{SUITE}-minbase-hall.tar.gz"


def apt_mirror() -> str:
    """The Debian mirror apt is configured with here (deb822 or one-line sources)."""
    files = sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    for f in files:
        text = f.read_text()
        for block in text.split("\n\n"):
            if re.search(rf"^Suites:.*\b{SUITE}\b", block, re.M) and "security" not in block:
                m = re.search(r"^URIs:\s*(\S+)", block, re.M)
                if m:
                    return m.group(1)
    lists = [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*.list")]
    for f in lists:
        if f.exists():
            for line in f.read_text().splitlines():
                parts = line.split()
                if parts[:1] == ["deb"] and SUITE in parts and "security" not in line:
                    return next(p for p in parts[1:] if "://" in p)
    return "http://deb.debian.org/debian"


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "debootstrap and chroot need root"
    if not shutil.which("debootstrap"):
        return "debootstrap is not installed (apt-get install debootstrap)"
    if not shutil.which("chroot"):
        return "chroot is not available"
    return None


def build_cached_root(work: Path) -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    target = work / "debootstrap"
    r = subprocess.run(["debootstrap", "--variant=minbase", f"--include={INCLUDE}", SUITE,
                        str(target), apt_mirror()], capture_output=True, text=True,
                       timeout=1200, check=False)
    if r.returncode != 0:
        log = (target / "debootstrap" / "debootstrap.log")
        tail = log.read_text()[-2000:] if log.exists() else r.stderr[-2000:]
        pytest.skip(f"debootstrap could not build a root (mirror {apt_mirror()}):\n{tail}")
    partial = TARBALL.with_suffix(".partial")
    with tarfile.open(partial, "w:gz") as tar:
        tar.add(target, arcname=".")
    partial.replace(TARBALL)
    shutil.rmtree(target)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build = tmp_path_factory.mktemp("src")
    # Build from a copy: pip writes build/ and *.egg-info next to the sources.
    shutil.copytree(ROOT, build / "hall-edge", ignore=shutil.ignore_patterns(
        ".venv", ".git", ".cache", "demo-out", "build", "*.egg-info", "__pycache__",
        ".hypothesis", ".mypy_cache", ".pytest_cache", ".ruff_cache"))
    subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-m", "pip", "wheel", "-q",
                    "--no-deps", "-w", str(out), str(build / "hall-edge")], check=True,
                   timeout=300)
    return next(out.glob("hall_edge-*.whl"))


@pytest.fixture
def debian_root(tmp_path: Path) -> Iterator[Path]:
    why = _why_not()
    if why:
        pytest.skip(why)
    if not TARBALL.exists():
        build_cached_root(tmp_path)
    root = tmp_path / "root"
    root.mkdir()
    with tarfile.open(TARBALL) as tar:
        tar.extractall(root, filter="fully_trusted")
    yield root
    shutil.rmtree(root, ignore_errors=True)


def chroot(root: Path, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "LANG": "C.UTF-8", "XDG_RUNTIME_DIR": "/run/user/0"}
    r = subprocess.run(["chroot", str(root), *cmd], capture_output=True, text=True,
                       timeout=600, env=env, check=False)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} → {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


def install(root: Path, wheel: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    src = root / "tmp" / "hall-edge-src"
    if not src.exists():
        src.mkdir(parents=True)
        shutil.copytree(ROOT / "systemd", src / "systemd")
        shutil.copytree(ROOT / "config", src / "config", symlinks=False)
        if (ROOT / "docs").is_dir():
            shutil.copytree(ROOT / "docs", src / "docs")
        shutil.copy(wheel, src / wheel.name)
    return chroot(root, "/bin/bash", "/tmp/hall-edge-src/systemd/install.sh",
                  "--wheel", f"/tmp/hall-edge-src/{wheel.name}", "--no-deps", "--no-apt", *extra)


def test_install_script_in_a_debian_root_gives_enabled_verified_units(
        debian_root: Path, wheel: Path) -> None:
    root = debian_root
    install(root, wheel)

    # Units in place and enabled, as systemctl itself says.
    assert chroot(root, "systemctl", "is-enabled", "hall-agent.service").stdout.strip() \
        == "enabled"
    assert (root / "etc/systemd/system/multi-user.target.wants/hall-agent.service").is_symlink()
    assert chroot(root, "systemctl", "--global", "is-enabled",
                  "hall-kiosk.service").stdout.strip() == "enabled"
    assert (root / "etc/xdg/autostart/hall-kiosk.desktop").exists()

    # systemd accepts them: no warning, the ExecStart binaries exist.
    (root / "run/user/0").mkdir(parents=True, exist_ok=True)
    for args in (["systemd-analyze", "verify", "/etc/systemd/system/hall-agent.service"],
                 ["systemd-analyze", "--user", "verify",
                  "/etc/systemd/user/hall-kiosk.service"]):
        r = chroot(root, *args, check=False)
        assert r.returncode == 0 and not r.stderr.strip() and not r.stdout.strip(), \
            f"{args}: {r.stdout}{r.stderr}"

    # Layout: code, config, data, the user in its groups.
    assert (root / "opt/hall-edge/venv/bin/hall-agent").exists()
    assert os.path.islink(root / "usr/local/bin/hallctl")
    assert (root / "etc/hall-edge/agent.toml").read_text() == \
        (ROOT / "config/agent.toml").read_text()
    assert (root / "etc/hall-edge/services.toml").stat().st_size > 0
    assert (root / "etc/udev/rules.d/99-hall-edge.rules").exists()
    ident = chroot(root, "id", "hall-edge").stdout
    for g in ("dialout", "gpio", "input", "lp", "audio"):
        assert f"({g})" in ident, ident
    data = root / "var/lib/hall-edge"
    passwd = {line.split(":")[0]: line.split(":") for line in
              (root / "etc/passwd").read_text().splitlines()}
    assert data.stat().st_uid == int(passwd["hall-edge"][2])
    assert passwd["hall-edge"][6] == "/usr/sbin/nologin"


def test_install_is_idempotent_and_uninstall_keeps_the_data(
        debian_root: Path, wheel: Path) -> None:
    root = debian_root
    install(root, wheel)
    conf = root / "etc/hall-edge/agent.toml"
    conf.write_text(conf.read_text() + '\n# this hall: printer on /dev/hall-printer\n')
    store = root / "var/lib/hall-edge/hall-agent.sqlite3"
    store.write_bytes(b"tickets")
    passwd_before = (root / "etc/passwd").read_text()

    again = install(root, wheel)  # an upgrade is the same command
    assert "kept your /etc/hall-edge/agent.toml" in again.stdout
    assert "# this hall" in conf.read_text()
    assert (root / "etc/hall-edge/agent.toml.dist").exists()
    assert (root / "etc/passwd").read_text() == passwd_before  # no second user
    assert chroot(root, "systemctl", "is-enabled", "hall-agent.service").stdout.strip() \
        == "enabled"

    chroot(root, "/bin/bash", "/tmp/hall-edge-src/systemd/install.sh", "--uninstall")
    assert not (root / "opt/hall-edge").exists()
    assert not (root / "etc/systemd/system/hall-agent.service").exists()
    assert not (root / "etc/systemd/system/multi-user.target.wants/hall-agent.service"
                ).is_symlink()
    assert store.read_bytes() == b"tickets"  # the data stays
    assert "# this hall" in conf.read_text()  # and the config
    assert (root / "etc/hall-edge/99-hall-edge.rules.saved").exists()
