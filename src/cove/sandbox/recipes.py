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
    # Satisfies fonttools' (matplotlib's) `python3-scipy | python3-munkres`, so that scipy, pythran and
    # the C++ compiler pythran needs (about 400 MB) stay out of the image.
    "python3-munkres",
)
LATER = "is not supported yet: Cove has no browser or desktop in the sandbox; use linux_latest or code_latest"

RECIPES = {
    recipe.name: recipe
    for recipe in (
        Recipe("linux_latest", LINUX_LATEST_PACKAGES),
        Recipe("code_latest", (*LINUX_LATEST_PACKAGES, *CODE_PACKAGES)),
        Recipe("browser_latest", (), not_buildable_because=LATER),
        Recipe("computer_latest", (), not_buildable_because=LATER),
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
        raise InvalidArgument(f"{name} cannot be built yet: it {recipe.not_buildable_because}")
    return recipe
