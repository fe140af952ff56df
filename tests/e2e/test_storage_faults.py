"""The SD card fills up or goes read-only under a real agent: a clear 503 for every
write, health says storage fault and why, a start on a full card says "disk full",
nothing committed is lost, and service resumes when space comes back."""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import HallUnderTest, wait_until
from sim.storage import fill_up

pytestmark = pytest.mark.slow


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=60)


@contextlib.contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    r = run("mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where))
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield where
    finally:
        run("umount", "-l", str(where))


@contextlib.contextmanager
def ext4_image(img: Path, where: Path) -> Iterator[str]:
    """A loop-mounted ext4 (errors=remount-ro); yields its /sys/fs/ext4 name."""
    where.mkdir(parents=True, exist_ok=True)
    run("truncate", "-s", "24M", str(img))
    if run("mkfs.ext4", "-q", "-F", str(img)).returncode != 0:
        pytest.skip("mkfs.ext4 is not available")
    loop = run("losetup", "-f", "--show", str(img))
    if loop.returncode != 0:
        pytest.skip(f"cannot set up a loop device here: {loop.stderr.strip()}")
    dev = loop.stdout.strip()
    try:
        r = run("mount", "-o", "errors=remount-ro", dev, str(where))
        if r.returncode != 0:
            pytest.skip(f"cannot mount a loop device here: {r.stderr.strip()}")
        try:
            yield Path(dev).name
        finally:
            run("umount", "-l", str(where))
    finally:
        run("losetup", "-d", dev)


def take(c: httpx.Client) -> httpx.Response:
    return c.post("/v1/tickets", json={"service": "A"},
                  headers={"Idempotency-Key": str(uuid.uuid4())})


def storage(h: HallUnderTest) -> dict[str, str]:
    return dict(h.health()["devices"].get("storage", {}))


def fill(where: Path) -> Path:
    return fill_up(where)


def test_a_full_card_answers_503_says_why_and_recovers(tmp_path: Path) -> None:
    root = tmp_path / "hall"
    with tmpfs(root / "data", "6m") as data:
        h = HallUnderTest(root)
        try:
            h.start()
            issued: list[str] = []
            with h.client() as c:
                assert take(c).status_code == 201
                filler = fill(data)
                answers = []
                for _ in range(50):  # the WAL may still hold a few frames
                    r = take(c)
                    answers.append(r.status_code)
                    if r.status_code == 201:
                        issued.append(r.json()["number"])
                    else:
                        break
                assert answers[-1] == 503, answers
                body = r.json()
                assert body["error"] == "storage_full" and "disk full" in body["message_en"]
                s = storage(h)
                assert s["status"] == "fault" and "disk full" in s["detail"], s
                assert h.health()["status"] == "fault"
                filler.unlink()
                assert wait_until(lambda: take(c).status_code == 201, 20)
                assert storage(h) == {}
        finally:
            h.close()
        assert "--- Logging error ---" not in h.log()


def test_a_start_on_a_full_card_says_disk_full(tmp_path: Path) -> None:
    root = tmp_path / "hall"
    with tmpfs(root / "data", "2m") as data:
        h = HallUnderTest(root)
        fill(data)
        try:
            with pytest.raises(RuntimeError) as e:
                h.start(timeout=20)
            assert "disk full" in str(e.value), str(e.value)[-1500:]
        finally:
            h.close()


def test_a_card_forced_read_only_answers_503_and_says_read_only(
        tmp_path: Path) -> None:
    root = tmp_path / "hall"
    with ext4_image(tmp_path / "card.img", root / "data") as name:
        trigger = Path("/sys/fs/ext4") / name / "trigger_fs_error"
        if not trigger.exists():
            pytest.skip("this kernel has no ext4 trigger_fs_error")
        h = HallUnderTest(root)
        try:
            h.start()
            with h.client() as c:
                first = take(c).json()["number"]
                trigger.write_text("hall-edge test: card fails\n")  # ext4 goes read-only
                r = take(c)
                assert r.status_code == 503, r.text
                assert r.json()["error"] == "storage_readonly", r.text
                s = storage(h)
                assert s["status"] == "fault" and "read-only" in s["detail"], s
                # What was committed before is still there and still answered.
                assert c.get("/v1/tickets").json()["tickets"][0]["number"] == first
        finally:
            h.close()
