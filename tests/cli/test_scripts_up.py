"""scripts/up on a fresh machine installs what the embedded default needs (issue 16, point 5).

The default registers the demo marketplace, whose images are built from system packages; when scripts/up
left them out, the first marketplace call on a fresh machine answered 409 MarketplaceUnavailable.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from altostratus.marketplace import demo_images

ROOT = Path(__file__).resolve().parents[2]


def _packages_demo_images_asks_for() -> set[str]:
    """Every Debian package the demo image builder's prerequisite messages tell the operator to install."""
    source = Path(demo_images.__file__).read_text()
    named = {pkg for hint in re.findall(r"apt-get install -y ([a-z0-9 .+-]+)`", source) for pkg in hint.split()}
    named |= {pkg for packages in demo_images.TOOLS.values() for pkg in packages.split()}
    return named


def _demo_packages_in_lib_sh() -> set[str]:
    script = f'source "{ROOT}/scripts/lib.sh"; printf "%s\\n" "${{DEMO_IMAGE_APT_PACKAGES[@]}}"'
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_lib_sh_lists_every_package_the_demo_image_builder_needs() -> None:
    needed = _packages_demo_images_asks_for()
    assert {"linux-image-amd64", "busybox-static", "syslinux-common", "mtools", "dosfstools"} <= needed
    assert needed <= _demo_packages_in_lib_sh()


def test_scripts_up_installs_them_before_starting() -> None:
    up = (ROOT / "scripts" / "up").read_text()
    install = up.index('apt_install "${DEMO_IMAGE_APT_PACKAGES[@]}"')
    assert install < up.index('alto" up')
