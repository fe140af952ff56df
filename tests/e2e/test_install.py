"""systemd/install.sh in a throwaway Debian root (debootstrap), never on this machine's /.

The root (debootstrap bookworm, minbase + python3-venv + systemd) takes minutes to
build, so it is built once per machine, not per clone: cached as a tarball under
$HALL_EDGE_TEST_CACHE (default: the user's cache directory, ~/.cache/hall-edge-test),
named by a digest of the recipe so a changed recipe builds anew. Docs, man pages,
locales and apt's downloaded packages are left out of it: the tests do not need them.

The build runs from tests/conftest.py's pytest_collection_finish hook (prepare_session
below), after collection and before the first test: pytest-timeout's per-test limit
covers a test's fixture setup too, and a one-off build of minutes must not count
against it. It only runs when a test of this file is selected, waits on a lock if
another session is building the same root, and has its own limit (BUILD_TIMEOUT_S).
A failed build makes the tests here fail with the reason (mirror, exit code, the end
of debootstrap's log). Each test then unpacks a fresh copy, which takes seconds.

The project goes in as a wheel built from this tree, with --no-deps: the point is the
install, the units and the layout, not PyPI.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import ROOT, wait_until

pytestmark = pytest.mark.slow

SUITE = "bookworm"  # Raspberry Pi OS 12 is bookworm too
INCLUDE = "python3,python3-venv,systemd,udev"
# Not needed by install.sh, systemctl or systemd-analyze (the units document themselves
# with file: links, not man pages; udev does not run in a chroot, nor does iconv); most
# of the root's size, and unpacking it is most of a test's setup (147 MB packed before).
PRUNE = ("var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "var/lib/apt/lists/*_*",
         "usr/share/doc/*", "usr/share/man/*", "usr/share/info/*", "usr/share/locale/*",
         "usr/share/lintian/*", "usr/lib/udev/hwdb.bin", "usr/lib/udev/hwdb.d/*",
         "usr/lib/*/gconv/*")
BUILD_TIMEOUT_S = 1800  # debootstrap on a slow mirror; the tests' own limit is pytest's


def cache_dir() -> Path:
    if env := os.environ.get("HALL_EDGE_TEST_CACHE"):
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg) / "hall-edge-test"


RECIPE = f"debootstrap --variant=minbase --include={INCLUDE} {SUITE}; prune {' '.join(PRUNE)}"
CACHE = cache_dir() / "debootstrap"
TARBALL = CACHE / f"{SUITE}-minbase-{hashlib.sha256(RECIPE.encode()).hexdigest()[:12]}.tar.gz"
BUILD_ERROR = pytest.StashKey[str]()


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
    for tool in ("debootstrap", "chroot", "tar"):
        if not shutil.which(tool):
            return f"{tool} is not installed (scripts/bootstrap installs it)"
    return None


def _unmount_under(path: Path) -> None:
    """debootstrap mounts /proc and /sys in the target; a killed one leaves them there."""
    prefix = str(path.resolve())
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    for m in sorted((m for m in mounts if m == prefix or m.startswith(prefix + "/")),
                    key=len, reverse=True):
        subprocess.run(["umount", "-l", m], check=False, capture_output=True)


def _remove(path: Path) -> None:
    if path.exists():
        _unmount_under(path)
        shutil.rmtree(path, ignore_errors=True)


def build_cached_root(say: Callable[[str], object] = print) -> str | None:
    """Build TARBALL unless there; None when it is there, else why not (for a person)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another session building it: wait, then use it
        if TARBALL.exists():
            return None
        mirror = apt_mirror()
        work = CACHE / f"build-{os.getpid()}"
        target = work / "root"
        log_copy = CACHE / "last-failed-build.log"
        cmd = ["debootstrap", "--variant=minbase", f"--include={INCLUDE}", SUITE,
               str(target), mirror]
        say(f"test_install: building the Debian root once for this machine (minutes): "
            f"{' '.join(cmd)} → {TARBALL}")
        t0 = time.monotonic()
        _remove(work)
        work.mkdir(parents=True)
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True, start_new_session=True)
            try:
                out, _ = proc.communicate(timeout=BUILD_TIMEOUT_S)
                failed = f"exited with {proc.returncode}" if proc.returncode else ""
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                out, _ = proc.communicate()
                failed = f"did not finish in {BUILD_TIMEOUT_S} s (a slow or unreachable mirror?)"
            if failed:
                log = target / "debootstrap" / "debootstrap.log"
                text = log.read_text(errors="replace") if log.exists() else out
                log_copy.write_text(text)
                tail = "\n".join(text.strip().splitlines()[-25:])
                return (f"debootstrap could not build the Debian root for the install test: "
                        f"{' '.join(cmd)} {failed}.\nIts full log: {log_copy}\n"
                        f"Check that this machine reaches the mirror {mirror} (it is the one "
                        f"apt uses here). The log ends:\n{tail}")
            _unmount_under(target)
            for pattern in PRUNE:
                for junk in target.glob(pattern):
                    if junk.is_dir() and not junk.is_symlink():
                        shutil.rmtree(junk)
                    else:
                        junk.unlink()
            partial = TARBALL.with_name(TARBALL.name + ".partial")
            r = subprocess.run(["tar", "--numeric-owner", "-C", str(target), "-czf",
                                str(partial), "."], capture_output=True, text=True, check=False)
            if r.returncode:
                partial.unlink(missing_ok=True)
                return f"packing the Debian root into {partial} failed: {r.stderr.strip()}"
            partial.replace(TARBALL)
            log_copy.unlink(missing_ok=True)
            say(f"test_install: built {TARBALL.name} ({TARBALL.stat().st_size >> 20} MB) "
                f"in {time.monotonic() - t0:.0f} s")
            return None
        finally:
            _remove(work)


def prepare_session(config: pytest.Config) -> None:
    """Called by tests/conftest.py before the first test when a test of this file is selected."""
    if _why_not() is None and not TARBALL.exists():
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        say: Callable[[str], object] = reporter.write_line if reporter is not None else print
        try:
            error = build_cached_root(say)
        except Exception as e:  # a session hook must not crash pytest: the tests say it
            error = f"building the Debian root for the install test failed: {e!r}"
        if error:
            config.stash[BUILD_ERROR] = error


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


@pytest.fixture(scope="session")
def debian_tarball(request: pytest.FixtureRequest) -> Path:
    why = _why_not()
    if why:
        pytest.skip(why)
    error = request.config.stash.get(BUILD_ERROR, None)
    if error:
        pytest.fail(error, pytrace=False)
    if not TARBALL.exists():
        pytest.fail(f"{TARBALL} was not built before the tests: tests/conftest.py's "
                    "pytest_collection_finish calls prepare_session() of this file "
                    "(was it run with --noconftest, or with the hook gone?)", pytrace=False)
    return TARBALL


@pytest.fixture
def debian_root(tmp_path: Path, debian_tarball: Path) -> Iterator[Path]:
    root = tmp_path / "root"
    root.mkdir()
    subprocess.run(["tar", "--numeric-owner", "-C", str(root), "-xzf", str(debian_tarball)],
                   check=True, capture_output=True, timeout=300)
    yield root
    _remove(root)


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


# The kiosk's Python packages, taken from this checkout's venv: the test is about the
# Debian side (the libraries install.sh installs), not about PyPI.
KIOSK_PY = ("PyQt6", "PIL", "pydantic", "pydantic_core", "annotated_types",
            "typing_inspection", "typing_extensions.py", "httpx", "httpcore", "h11", "anyio",
            "sniffio", "certifi", "idna", "qrcode", "serial", "rich", "pygments",
            "markdown_it", "mdurl", "click")


def _x_server(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Xvfb on this machine; a process in the chroot reaches it by its abstract socket
    (a Linux X server listens in the abstract namespace, which a chroot shares)."""
    r, w = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", "1080x1920x24",
                             "-nolisten", "tcp"], pass_fds=(w,), stdout=subprocess.DEVNULL,
                            stderr=log.open("wb"))
    os.close(w)
    with os.fdopen(r, "rb") as pipe:
        number = pipe.readline().decode().strip()
    if not number:
        proc.kill()
        raise AssertionError("Xvfb did not start: " + log.read_text(errors="replace"))
    return proc, f":{number}"


def _kiosk_window(display: str) -> bool:
    tree = subprocess.run(["xwininfo", "-root", "-children", "-display", display],
                          capture_output=True, text=True, timeout=30).stdout
    return any("1080x1920+0+0" in line for line in tree.splitlines()[1:])


@pytest.mark.timeout(1800)
@pytest.mark.skipif(not (shutil.which("Xvfb") and shutil.which("xwininfo")),
                    reason="needs Xvfb and x11-utils (scripts/bootstrap)")
def test_the_kiosk_starts_on_x_after_install_with_its_debian_packages(
        debian_root: Path, wheel: Path, tmp_path: Path) -> None:
    """install.sh with apt (not --no-apt) on a stock Debian 12, then hall-kiosk on a real
    X server with the xcb platform: it shows its window full screen and ends with 0 on
    SIGTERM (without xcb's libraries Qt aborts, rc 134, and the unit crash-loops)."""
    root = debian_root
    shutil.copy("/etc/resolv.conf", root / "etc" / "resolv.conf")
    (root / "etc/apt/sources.list").write_text(f"deb {apt_mirror()} {SUITE} main\n")
    install(root, wheel)  # the layout first, as the other tests do
    src = root / "tmp" / "hall-edge-src"
    done = chroot(root, "/bin/bash", "/tmp/hall-edge-src/systemd/install.sh",
                  "--wheel", f"/tmp/hall-edge-src/{wheel.name}", "--no-deps")
    assert "installing" in done.stdout, done.stdout
    assert src.exists()
    site = next((root / "opt/hall-edge/venv/lib").glob("python3*/site-packages"))
    here = Path(next(p for p in sys.path if p.endswith("site-packages")))
    for name in KIOSK_PY:
        if (here / name).is_dir():
            shutil.copytree(here / name, site / name, dirs_exist_ok=True)
        elif (here / name).exists():
            shutil.copy(here / name, site / name)

    xvfb, display = _x_server(tmp_path / "xvfb.log")
    log = tmp_path / "kiosk.log"
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "LANG": "C.UTF-8", "HOME": "/tmp", "DISPLAY": display, "QT_QPA_PLATFORM": "xcb",
           "QT_DEBUG_PLUGINS": "1", "XDG_RUNTIME_DIR": "/tmp"}
    kiosk = subprocess.Popen(["chroot", str(root), "/opt/hall-edge/venv/bin/hall-kiosk",
                              "--config", "/etc/hall-edge/agent.toml"], env=env,
                             stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        shown = wait_until(lambda: kiosk.poll() is not None or _kiosk_window(display), 120)
        assert shown and kiosk.poll() is None, \
            f"hall-kiosk exited {kiosk.returncode}:\n{log.read_text(errors='replace')[-4000:]}"
        assert "xcb" in log.read_text(errors="replace")  # QT_DEBUG_PLUGINS: xcb was loaded
        kiosk.send_signal(signal.SIGTERM)
        assert kiosk.wait(30) == 0, log.read_text(errors="replace")[-4000:]
        assert "libxcb-cursor0" in done.stdout  # install.sh's own list, not a side effect
    finally:
        if kiosk.poll() is None:
            kiosk.kill()
            kiosk.wait(10)
        xvfb.terminate()
        xvfb.wait(10)
