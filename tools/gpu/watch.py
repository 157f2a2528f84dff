"""Peak GPU memory, system RAM and disk of one command, for the T4 envelope's other limits.

    python3 tools/gpu/watch.py LABEL -- COMMAND ...

Runs COMMAND and samples every 0.5 s: nvidia-smi's used memory on the whole GPU, the resident memory of
COMMAND's process tree (the notebook kernel and what it starts: llama.cpp, the catch-up training), and
the used space of the filesystem that holds $COURSE_OUTPUT (growth since the start). Where the host lets
a memory cgroup be made, COMMAND runs under one capped at $RAM_CAP_GIB (a free Colab's 12.67 GiB, as
Unsloth reports it there); else the peak alone is measured. Prints one line and exits with COMMAND's
status.
"""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup/t4-envelope")


def tree_rss(root: int) -> int:
    """Resident bytes of root and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
            rss[int(entry)] = int(fields[21]) * page
        except (OSError, ValueError, IndexError):
            continue
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def gpu_used_mib() -> int:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", "0"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout
        return int(out.split()[0])
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return 0


def memory_cgroup(cap_bytes: int) -> Path | None:
    """A cgroup v2 capped at cap_bytes (swap off), or None where the host allows none."""
    try:
        Path("/sys/fs/cgroup/cgroup.subtree_control").write_text("+memory")
    except OSError:
        pass
    try:
        CGROUP.mkdir(exist_ok=True)
        (CGROUP / "memory.max").write_text(str(cap_bytes))
        if (CGROUP / "memory.swap.max").exists():
            (CGROUP / "memory.swap.max").write_text("0")
        return CGROUP
    except OSError:
        return None


def main() -> int:
    label, command = sys.argv[1], sys.argv[sys.argv.index("--") + 1 :]
    cap = int(float(os.environ.get("RAM_CAP_GIB", "12.67")) * 1024**3)
    where = os.environ.get("COURSE_OUTPUT", "/tmp")
    Path(where).mkdir(parents=True, exist_ok=True)
    cgroup = memory_cgroup(cap)

    def enter_cgroup():
        if cgroup:
            (cgroup / "cgroup.procs").write_text(str(os.getpid()))

    disk0 = shutil.disk_usage(where).used
    proc = subprocess.Popen(command, preexec_fn=enter_cgroup)
    peak_rss = peak_gpu = peak_disk = 0
    start = time.time()
    while proc.poll() is None:
        peak_rss = max(peak_rss, tree_rss(proc.pid))
        peak_gpu = max(peak_gpu, gpu_used_mib())
        peak_disk = max(peak_disk, shutil.disk_usage(where).used - disk0)
        time.sleep(0.5)
    disk_end = shutil.disk_usage(where).used - disk0
    kept = (
        f"cgroup memory.max {cap / 1024**3:.2f} GiB"
        if cgroup
        else "no cgroup on this host, peak only"
    )
    if cgroup and (cgroup / "memory.peak").exists():
        kept += (
            f", cgroup memory.peak {int((cgroup / 'memory.peak').read_text()) / 1024**3:.2f} GiB"
        )
    print(
        f"{label}: exit {proc.returncode} after {time.time() - start:.0f} s; peak GPU memory {peak_gpu:,} MiB "
        f"(nvidia-smi, whole GPU); peak RAM {peak_rss / 1024**3:.2f} GiB (process tree RSS; {kept}); "
        f"disk +{peak_disk / 1e9:.2f} GB at peak, +{disk_end / 1e9:.2f} GB at the end ({where}'s filesystem)"
    )
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
