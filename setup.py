"""configs/, the top-level folder of the architecture specs, ships inside the
wheel (and the sdist) as mnsize/configs; everything else is in pyproject.toml.

The mapping is given to build_py alone, not to the whole project as a
package-dir entry in pyproject.toml: setuptools installs a project whose
packages do not all lie under one root as an editable import hook, which every
Python start-up in that environment then imports (18 ms more for `python -c
pass`, 10 to 14 ms more for `mnsize table`; 2026-11-22, 2-core x86_64, Python
3.11, setuptools 84). This way an editable install stays a plain path entry,
and no symbolic link is needed in the tree. mnsize finds the specs by path
(mnsize/models.py): inside the package in a wheel, beside it in a checkout.
"""

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithSpecs(build_py):
    def finalize_options(self):
        super().finalize_options()
        self.packages = [*self.packages, "mnsize.configs"]
        self.package_dir = {**self.package_dir, "mnsize.configs": "configs"}
        self.package_data = {**self.package_data, "mnsize.configs": ["*.yaml"]}


setup(cmdclass={"build_py": BuildPyWithSpecs})
