# SPDX-License-Identifier: GPL-3.0-or-later
"""Package layout: each top-level room is a source root with one distinctively named package."""

from setuptools import find_packages, setup

ROOTS = ["cli", "sse", "reference", "conformance", "loadtests", "clients/python"]

packages = ["dualstore_spec"]
package_dir = {"dualstore_spec": "spec"}
for root in ROOTS:
    for name in find_packages(where=root):
        packages.append(name)
        package_dir[name] = f"{root}/{name.replace('.', '/')}"

setup(packages=packages, package_dir=package_dir)
