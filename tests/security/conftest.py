"""The app fixtures of tests/ui (an app database under VTT_DATA_DIR, the coordinator password,
open studies with a reader) for the security tests that drive the app."""

from ui.conftest import admin_password, app_engine, reading_study

__all__ = ["admin_password", "app_engine", "reading_study"]
