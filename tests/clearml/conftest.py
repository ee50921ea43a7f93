"""ClearML tests run offline, with HOME and CLEARML_CACHE_DIR in a temporary folder: no clearml.conf, no
credentials, and nothing written into the developer's own home or cache."""

from tracelet_testsupport.clearml import cache_dir, clearml_home  # noqa: F401  (fixtures: pytest finds them by name here)
