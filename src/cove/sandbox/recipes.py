"""The built-in image recipes `cove image build NAME` knows: a name and the Debian packages it adds.

A recipe lists only what goes on top of a minimal Debian (debootstrap's minbase); apt adds their
dependencies, never their recommendations.
"""

from __future__ import annotations

from dataclasses import dataclass

from cove.errors import InvalidArgument
from cove.sandbox.host_image import LINUX_LATEST_PACKAGES


@dataclass(frozen=True)
class Recipe:
    name: str
    packages: tuple[str, ...]
    not_buildable_because: str = ""


CODE_PACKAGES = (
    "python3-ipykernel",
    "python3-numpy",
    "python3-pandas",
    "python3-matplotlib",
    "nodejs",
    "node-typescript",  # run_code's typescript: its compiler strips each cell's types
    # Satisfies fonttools' (matplotlib's) `python3-scipy | python3-munkres`, so that scipy, pythran and
    # the C++ compiler pythran needs (about 400 MB) stay out of the image.
    "python3-munkres",
    "r-base-core",  # run_code's r: its png() device draws with cairo, headless
    "default-jdk-headless",  # run_code's java: JShell
)
BROWSER_PACKAGES = (
    "chromium",
    "fonts-liberation",
    "fonts-noto-color-emoji",
    "fonts-noto-cjk",
)
"""Debian's Chromium, with fonts for Latin, emoji and Chinese, Japanese and Korean pages."""
DESKTOP_IS_DEFAULT = "is not an image of its own here: linux_latest and code_latest have the desktop"
LINUX_ONLY = "is not available: Cove runs Linux sandboxes; linux_latest has a desktop and the computer tools"
NO_ANDROID = "is not available: Cove has no Android sandboxes; linux_latest and code_latest are Linux"

RECIPES = {
    recipe.name: recipe
    for recipe in (
        Recipe("linux_latest", LINUX_LATEST_PACKAGES),
        Recipe("code_latest", (*LINUX_LATEST_PACKAGES, *CODE_PACKAGES)),
        Recipe("browser_latest", (*LINUX_LATEST_PACKAGES, *BROWSER_PACKAGES)),
        Recipe("computer_latest", (), not_buildable_because=DESKTOP_IS_DEFAULT),
        Recipe("windows_latest", (), not_buildable_because=LINUX_ONLY),
        Recipe("mobile_latest", (), not_buildable_because=NO_ANDROID),
    )
}


def buildable_recipe(name: str) -> Recipe:
    """The recipe called `name`, or an error that says which ones can be built."""
    recipe = RECIPES.get(name)
    buildable = ", ".join(r.name for r in RECIPES.values() if not r.not_buildable_because)
    if recipe is None:
        raise InvalidArgument(
            f"there is no recipe {name!r} (recipes: {buildable}); "
            f"get other images with 'cove image import {name} PATH'"
        )
    if recipe.not_buildable_because:
        raise InvalidArgument(f"{name} {recipe.not_buildable_because}")
    return recipe
