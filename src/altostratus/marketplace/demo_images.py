"""Small, bootable OS disk images that Altostratus builds itself for its demo marketplace offer.

Why build them: the demo cloud must deploy *real* VMs with no internet, so it cannot download cloud images.
Instead it assembles a raw disk from parts Debian already ships on the host: the distribution kernel
(``linux-image-amd64``), ``busybox-static`` and SYSLINUX. The disk boots by BIOS like any cloud image (no
``-kernel`` flag), so a hypervisor driver needs no special case for it.

Layout (everything unprivileged: no mounts, no loop devices, so it works in containers)::

    sector 0        SYSLINUX mbr.bin + an MBR partition table written here (one active FAT16 partition)
    1 MiB           FAT16 partition built as a separate file (mkfs.vfat -C, mcopy, syslinux --install)
                    holding the kernel, initrd.gz and syslinux.cfg
    rest            zero, left as holes: the file is sparse

The initramfs (cpio newc, written here in Python so device nodes need no root) holds busybox, the kernel
modules needed for virtio disks and vfat/iso9660 seeds, and ``demo_init.sh`` as ``/init``; see
docs/demo-images.md for what the guest prints.
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

BOOT_DIR = Path("/boot")
MODULES_DIR = Path("/lib/modules")
BUSYBOX = Path("/bin/busybox")
SYSLINUX_MBR = Path("/usr/lib/syslinux/mbr/mbr.bin")
PART_START = 2048  # sectors: the usual 1 MiB alignment
SECTOR = 512
MIB = 1 << 20
BUILD_EPOCH = 1704067200  # 2024-01-01: fixed timestamps make the same inputs give the same image bytes
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # also keeps the values safe inside the shell /init
INIT_SCRIPT = Path(__file__).with_name("demo_init.sh")
AGENT_SCRIPT = Path(__file__).with_name("demo_agent.sh")  # /bin/alto-agent: the guest agent runCommand talks to

# Loaded in this order (after their dependencies); ones a kernel builds in are skipped.
REQUIRED_MODULES = ["virtio_pci", "virtio_blk", "vfat", "isofs", "nls_cp437", "nls_ascii", "nls_utf8"]
# Nice to have: seeds on SCSI/IDE/SATA CD-ROMs (libvirt's usual cdrom), and the ACPI power button.
# virtio_console: the guest agent's virtio-serial port (runCommand).
OPTIONAL_MODULES = [
    "virtio_scsi", "sd_mod", "sr_mod", "ata_piix", "ahci", "nls_iso8859_1", "button", "evdev", "virtio_console",
]  # fmt: skip

TOOLS = {  # command -> Debian packages that provide it
    "mkfs.vfat": "dosfstools",
    "mcopy": "mtools",
    "syslinux": "syslinux syslinux-common mtools",
}

SYSLINUX_CFG = """\
SERIAL 0 115200
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  KERNEL vmlinuz
  INITRD initrd.gz
  APPEND console=ttyS0,115200 quiet no_timer_check
"""

INITTAB = """\
ttyS0::respawn:-/bin/sh
::respawn:/bin/alto-agent
::ctrlaltdel:/sbin/reboot
::shutdown:/bin/sync
"""


class DemoImageError(RuntimeError):
    """Building a demo image is impossible on this host; the message says what to install."""


def _which(cmd: str) -> str | None:
    # mkfs.vfat lives in /sbin or /usr/sbin, which a non-root PATH may lack.
    return shutil.which(cmd) or shutil.which(cmd, path="/usr/sbin:/sbin")


def _kernel_version(v: str) -> list[tuple[int, str]]:
    return [(int(p), "") if p.isdigit() else (-1, p) for p in re.split(r"[.-]", v)]


def find_kernel(boot_dir: Path = BOOT_DIR) -> Path:
    """The newest /boot/vmlinuz-*; raises with the package to install when there is none."""
    kernels = [p for p in boot_dir.glob("vmlinuz-*") if p.is_file()]
    if not kernels:
        raise DemoImageError(
            f"No Linux kernel found in {boot_dir}: install it with `apt-get install -y linux-image-amd64`"
        )
    kernel = max(kernels, key=lambda p: _kernel_version(p.name.removeprefix("vmlinuz-")))
    if not os.access(kernel, os.R_OK):
        raise DemoImageError(f"The kernel {kernel} is not readable by this user: run the build as root")
    return kernel


def _is_static(binary: Path) -> bool:
    """True when the ELF file has no PT_INTERP program header (no dynamic loader: it runs alone in an initramfs)."""
    data = binary.read_bytes()
    if data[:5] != b"\x7fELF\x02":
        return False
    phoff = int.from_bytes(data[0x20:0x28], "little")
    phentsize = int.from_bytes(data[0x36:0x38], "little")
    phnum = int.from_bytes(data[0x38:0x3A], "little")
    return all(
        int.from_bytes(data[phoff + i * phentsize : phoff + i * phentsize + 4], "little") != 3 for i in range(phnum)
    )


def check_prerequisites(*, boot_dir: Path = BOOT_DIR, modules_dir: Path = MODULES_DIR) -> list[str]:
    """Human-readable problems that stop a build on this host (empty when it can build)."""
    problems: list[str] = []
    try:
        kernel = find_kernel(boot_dir)
        release = kernel.name.removeprefix("vmlinuz-")
        if not (modules_dir / release / "modules.dep").is_file():
            problems.append(
                f"No kernel modules for {release} in {modules_dir / release}: "
                "install them with `apt-get install -y linux-image-amd64`"
            )
    except DemoImageError as e:
        problems.append(str(e))
    if not BUSYBOX.is_file() or not _is_static(BUSYBOX):
        problems.append(f"No static busybox at {BUSYBOX}: install it with `apt-get install -y busybox-static`")
    if not SYSLINUX_MBR.is_file():
        problems.append(f"No {SYSLINUX_MBR}: install it with `apt-get install -y syslinux-common`")
    for cmd, packages in TOOLS.items():
        if not _which(cmd):
            problems.append(f"`{cmd}` not found: install it with `apt-get install -y {packages}`")
    return problems


def _modules(release_dir: Path) -> list[tuple[str, bytes]]:
    """The needed modules with their dependencies, dependencies first, decompressed (busybox insmod wants .ko)."""
    paths: dict[str, str] = {}
    deps: dict[str, list[str]] = {}

    def name_of(path: str) -> str:
        return Path(path).name.split(".ko")[0].replace("-", "_")

    for line in (release_dir / "modules.dep").read_text().splitlines():
        target, _, rest = line.partition(":")
        paths[name_of(target)] = target
        deps[name_of(target)] = [name_of(d) for d in rest.split()]
    builtin_file = release_dir / "modules.builtin"
    builtin = {name_of(p) for p in builtin_file.read_text().split()} if builtin_file.exists() else set()
    missing = [m for m in REQUIRED_MODULES if m not in paths and m not in builtin]
    if missing:
        raise DemoImageError(
            f"Kernel modules {', '.join(missing)} not found in {release_dir}: this kernel cannot boot the demo image"
        )

    order: list[str] = []

    def visit(name: str) -> None:
        if name in order or name not in paths:
            return
        for dep in reversed(deps[name]):  # modules.dep lists the deepest dependency last
            visit(dep)
        order.append(name)

    for name in REQUIRED_MODULES + OPTIONAL_MODULES:
        visit(name)
    return [(name, _decompress(release_dir / paths[name])) for name in order]


def _decompress(path: Path) -> bytes:
    data = path.read_bytes()
    if path.suffix == ".xz":
        return lzma.decompress(data)
    if path.suffix == ".gz":
        return gzip.decompress(data)
    if path.suffix == ".zst":
        if not _which("zstd"):
            raise DemoImageError(f"{path} is zstd-compressed: install `zstd` with `apt-get install -y zstd`")
        return subprocess.run(["zstd", "-dc", str(path)], check=True, capture_output=True).stdout
    return data


def _cpio(entries: list[tuple[str, int, bytes, int]]) -> bytes:
    """A cpio 'newc' archive of (name, mode, data, rdev) entries: device nodes need no root; output is reproducible."""
    out = bytearray()
    for ino, (name, mode, data, rdev) in enumerate([*entries, ("TRAILER!!!", 0, b"", 0)], start=1):
        nlink = 2 if mode & 0o040000 else 1
        fields = [ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev >> 8, rdev & 0xFF, len(name) + 1, 0]
        out += b"070701" + "".join(f"{f:08x}" for f in fields).encode() + name.encode() + b"\0"
        out += b"\0" * (-len(out) % 4) + data
        out += b"\0" * (-len(out) % 4)
    return bytes(out)


def _initramfs(release_dir: Path, identity: dict[str, str]) -> bytes:
    d, f, x = 0o040755, 0o100644, 0o100755
    entries: list[tuple[str, int, bytes, int]] = [
        (name, d, b"", 0)
        for name in ["bin", "dev", "etc", "etc/acpi", "etc/acpi/PWRF", "etc/altostratus", "lib", "lib/modules"]
    ]
    entries += [
        ("dev/console", 0o020600, b"", (5 << 8) | 1),  # the kernel opens it for /init before devtmpfs is up
        ("bin/busybox", x, BUSYBOX.read_bytes(), 0),
        ("init", x, INIT_SCRIPT.read_bytes(), 0),
        ("bin/alto-agent", x, AGENT_SCRIPT.read_bytes(), 0),
        ("etc/inittab", f, INITTAB.encode(), 0),
        ("etc/passwd", f, b"root:x:0:0:root:/root:/bin/sh\n", 0),
        ("etc/group", f, b"root:x:0:\n", 0),
        ("etc/acpi/PWRF/00000080", x, b"#!/bin/sh\npoweroff\n", 0),
        ("etc/altostratus/image", f, "".join(f"IMAGE_{k.upper()}='{v}'\n" for k, v in identity.items()).encode(), 0),
        (
            "etc/os-release",
            f,
            f'NAME="Altostratus Demo Linux"\nID=altostratus-demo\nVERSION_ID="{identity["version"]}"\n'.encode(),
            0,
        ),
    ]
    modules = _modules(release_dir)
    entries += [(f"lib/modules/{name}.ko", f, data, 0) for name, data in modules]
    entries.append(("lib/modules/load-order", f, "".join(f"{name}\n" for name, _ in modules).encode(), 0))
    return gzip.compress(_cpio(entries), compresslevel=9, mtime=0)


def _chs(lba: int) -> bytes:
    """CHS address of an LBA in the 255-head/63-sector geometry (only old BIOS code paths read it)."""
    c, rem = divmod(lba, 255 * 63)
    h, s = divmod(rem, 63)
    if c > 1023:
        c, h, s = 1023, 254, 62
    return bytes([h, ((c >> 2) & 0xC0) | (s + 1), c & 0xFF])


def _mbr(bootcode: bytes, signature: bytes, start: int, sectors: int) -> bytes:
    """Sector 0: boot code, disk signature and one active FAT16-LBA (0x0e) partition."""
    entry = b"\x80" + _chs(start) + b"\x0e" + _chs(start + sectors - 1)
    entry += start.to_bytes(4, "little") + sectors.to_bytes(4, "little")
    return bootcode[:440].ljust(440, b"\0") + signature + b"\0\0" + entry + b"\0" * 48 + b"\x55\xaa"


def _run(*cmd: str) -> None:
    exe = _which(cmd[0]) or cmd[0]
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(BUILD_EPOCH)}  # mtools stamps FAT entries with it
    proc = subprocess.run([exe, *cmd[1:]], capture_output=True, text=True, env=env)
    if proc.returncode:
        raise DemoImageError(f"{' '.join(cmd)} failed: {proc.stderr.strip() or proc.stdout.strip()}")


def _copy_sparse(src: Path, dst_fd: int, offset: int) -> None:
    """Copy src into dst at offset, seeking over zero blocks so they stay holes."""
    block = 64 * 1024
    with src.open("rb") as f:
        pos = offset
        while chunk := f.read(block):
            if chunk.count(0) != len(chunk):
                os.pwrite(dst_fd, chunk, pos)
            pos += len(chunk)


def build_demo_image(
    out: Path,
    *,
    publisher: str,
    offer: str,
    sku: str,
    version: str,
    size_mib: int = 256,
    boot_dir: Path = BOOT_DIR,
    modules_dir: Path = MODULES_DIR,
) -> Path:
    """Write a sparse, BIOS-bootable raw disk image of the demo OS to ``out`` and return ``out``.

    ``boot_dir``/``modules_dir`` say where to take the kernel and its modules from (tests point them elsewhere).
    Raises DemoImageError naming the packages to install when the host lacks a part.
    """
    identity = {"publisher": publisher, "offer": offer, "sku": sku, "version": version}
    for key, value in identity.items():
        if not NAME.match(value):
            raise ValueError(f"{key} {value!r} is not valid: use letters, digits, '.', '-' and '_' (at most 64)")
    problems = check_prerequisites(boot_dir=boot_dir, modules_dir=modules_dir)
    if problems:
        raise DemoImageError("; ".join(problems))
    kernel = find_kernel(boot_dir)
    initrd = _initramfs(modules_dir / kernel.name.removeprefix("vmlinuz-"), identity)
    payload_mib = (kernel.stat().st_size + len(initrd)) // MIB + 1
    fat_mib = max(32, -(-(payload_mib + 8) // 8) * 8)  # room for FAT16 metadata; 32 MiB fits Debian's kernel
    if size_mib < fat_mib + 1:
        raise ValueError(f"size_mib must be at least {fat_mib + 1} for this kernel and initramfs")
    digest = hashlib.sha256(repr(sorted(identity.items())).encode()).digest()

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="alto-demo-") as tmp:
        work = Path(tmp)
        fat = work / "fat.img"
        (work / "initrd.gz").write_bytes(initrd)
        (work / "syslinux.cfg").write_text(SYSLINUX_CFG)
        shutil.copyfile(kernel, work / "vmlinuz")
        geometry = ["-F", "16", "-h", str(PART_START), "-i", digest[:4].hex(), "-n", "ALTOBOOT"]
        _run("mkfs.vfat", "--invariant", *geometry, "-C", str(fat), str(fat_mib * 1024))
        _run("mcopy", "-i", str(fat), str(work / "vmlinuz"), str(work / "initrd.gz"), str(work / "syslinux.cfg"), "::")
        _run("syslinux", "--install", str(fat))
        partial = out.with_name(out.name + ".partial")
        fd = os.open(partial, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.ftruncate(fd, size_mib * MIB)  # all holes; only the MBR and the FAT's non-zero blocks get written
            os.pwrite(fd, _mbr(SYSLINUX_MBR.read_bytes(), digest[4:8], PART_START, fat_mib * MIB // SECTOR), 0)
            _copy_sparse(fat, fd, PART_START * SECTOR)
            os.fsync(fd)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        finally:
            os.close(fd)
        os.replace(partial, out)
    return out


def allocated_bytes(path: Path) -> int:
    """Bytes the file really occupies on disk (holes excluded): a sparse image is much smaller than its size."""
    return os.stat(path).st_blocks * 512
