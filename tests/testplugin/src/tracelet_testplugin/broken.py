"""A plugin whose import fails, to test the error that names its distribution."""

import tracelet_testplugin_missing_dependency  # noqa: F401

Backend = None
