"""Settings come from defaults, a TOML file, COVE_* variables and explicit values, in that order."""

from __future__ import annotations

from pathlib import Path

import pytest

from cove.config import Settings, load_settings, settings_help


def test_defaults_need_no_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("COVE_CONFIG", "COVE_PORT", "COVE_DATA_DIR", "COVE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.port == 9000
    assert settings.database == "sqlite:////var/lib/cove/cove.db"
    assert settings.base_url == "http://127.0.0.1:9000"


def test_file_then_environment_then_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "cove.toml"
    config.write_text('port = 9100\nsession_quota = 5\ndata_dir = "/srv/cove"\n')
    monkeypatch.setenv("COVE_SESSION_QUOTA", "7")
    settings = load_settings(config, data_dir=Path("/data"))
    assert (settings.port, settings.session_quota, settings.data_dir) == (9100, 7, Path("/data"))


def test_bad_values_and_unknown_names_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COVE_PORT", "ninety")
    with pytest.raises(ValueError, match="setting port"):
        load_settings()
    monkeypatch.delenv("COVE_PORT")
    config = tmp_path / "cove.toml"
    config.write_text("prot = 1\n")
    with pytest.raises(ValueError, match="unknown setting"):
        load_settings(config)


def test_help_lists_every_setting() -> None:
    text = settings_help()
    for name in Settings.__dataclass_fields__:
        assert f"COVE_{name.upper()}" in text


def test_true_false_settings_and_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COVE_S3_PATH_STYLE", "false")  # bool("false") would be True
    monkeypatch.setenv("COVE_S3_SECRET_ACCESS_KEY", "very-secret")
    settings = load_settings()
    assert settings.s3_path_style is False and "very-secret" not in repr(settings)
    config = tmp_path / "cove.toml"
    config.write_text("s3_path_style = true\n")
    monkeypatch.delenv("COVE_S3_PATH_STYLE")
    assert load_settings(config).s3_path_style is True
    monkeypatch.setenv("COVE_OSS_PRIVATE_NETWORKS", "maybe")
    with pytest.raises(ValueError, match="oss_private_networks"):
        load_settings()
