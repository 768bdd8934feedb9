"""deploy/local/jmeter.py lays the jars out as JMeter's distribution does (on stand-in jars)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from deploy.local import jmeter


def jar(path: Path, files: dict[str, str] | None = None) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
        for name, text in (files or {}).items():
            archive.writestr(name, text)


def test_the_pom_pins_a_jmeter_5_6() -> None:
    assert jmeter.jmeter_version().startswith("5.6.")


def test_assemble_places_launcher_config_plugins_and_libraries(tmp_path: Path) -> None:
    jars = tmp_path / "jars"
    jars.mkdir()
    version = "5.6.3"
    jar(jars / f"ApacheJMeter-{version}.jar")
    jar(jars / f"ApacheJMeter_config-{version}.jar", {"bin/jmeter.properties": "a=1\n",
                                                      "bin/saveservice.properties": "b=2\n"})
    for plugin in ("core", "http", "components"):
        jar(jars / f"ApacheJMeter_{plugin}-{version}.jar")
    jar(jars / "commons-io-2.15.1.jar")
    home = tmp_path / "home"
    jmeter.assemble(jars, home, version)
    assert (home / "bin" / "ApacheJMeter.jar").exists()
    assert (home / "bin" / "jmeter.properties").read_text() == "a=1\n"
    assert sorted(p.name for p in (home / "lib" / "ext").iterdir()) == [
        f"ApacheJMeter_{plugin}-{version}.jar" for plugin in ("components", "core", "http")]
    assert (home / "lib" / "commons-io-2.15.1.jar").exists() and (home / "lib" / "junit").is_dir()
    wrapper = home / "bin" / "jmeter"
    assert wrapper.stat().st_mode & 0o111 and '-jar "$(dirname "$0")/ApacheJMeter.jar" "$@"' in wrapper.read_text()


def test_assemble_says_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "jars").mkdir()
    with pytest.raises(jmeter.JMeterInstallError, match=r"bin/ApacheJMeter\.jar"):
        jmeter.assemble(tmp_path / "jars", tmp_path / "home", "5.6.3")
