"""Apache JMeter, fetched from Maven Central and laid out as its own distribution. No download site.

    python -m deploy.local.jmeter install|status      # prints the `jmeter` command's path

Needs a JDK (17+) and Maven, like the local Kafka. `install` runs `mvn dependency:copy-dependencies`
on `jmeter-pom.xml` (which pins the version) once, then builds `$TIDEGATE_HOME/jmeter/<version>/`:

    bin/ApacheJMeter.jar     the launcher (org.apache.jmeter.NewDriver finds its home from here)
    bin/*.properties, ...    unpacked from ApacheJMeter_config (jmeter.properties, saveservice, log4j2.xml)
    bin/jmeter               a small sh wrapper: java -jar ApacheJMeter.jar "$@" (headless)
    lib/                     the runtime dependencies
    lib/ext/ApacheJMeter_*   the engine and the HTTP, components and functions plugins

Point the tests connector at it with `TIDEGATE_JMETER_BINARY=<that bin/jmeter>` (or put it on PATH).
Python API: `ensure_jmeter() -> Path` (the wrapper), `jmeter_version()`.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

from deploy.local import _process

HERE = Path(__file__).resolve().parent
POM = HERE / "jmeter-pom.xml"
WRAPPER = """#!/bin/sh
# Apache JMeter {version}, assembled from Maven Central by deploy/local/jmeter.py.
exec java ${{JVM_ARGS:--Xms128m -Xmx512m}} -Djava.awt.headless=true -jar "$(dirname "$0")/ApacheJMeter.jar" "$@"
"""

log = logging.getLogger("tidegate.jmeter")


class JMeterInstallError(RuntimeError):
    """JMeter could not be fetched or assembled; the message says what to do."""


def jmeter_version(pom: Path = POM) -> str:
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    node = ET.parse(pom).getroot().find("m:properties/m:jmeter.version", ns)
    if node is None or not (node.text or "").strip():
        raise JMeterInstallError(f"{pom} has no <jmeter.version> property")
    return (node.text or "").strip()


def jmeter_home(home: Path | None = None) -> Path:
    return (home or _process.tidegate_home().resolve()) / "jmeter" / jmeter_version()


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise JMeterInstallError(f"`{tool}` was not found on PATH; fetching and running JMeter needs a JDK 17+ and "
                                 "Maven (Debian/Ubuntu: apt-get install openjdk-17-jdk-headless maven)")
    return path


def assemble(jars: Path, target: Path, version: str) -> None:
    """Lay the fetched jars out in `target` as JMeter's distribution does (pure file work)."""
    (target / "bin").mkdir(parents=True)
    (target / "lib" / "ext").mkdir(parents=True)
    (target / "lib" / "junit").mkdir()  # NewDriver expects it (JUnit samplers' folder)
    for jar in sorted(jars.glob("*.jar")):
        name = jar.name
        if name == f"ApacheJMeter-{version}.jar":
            shutil.copy2(jar, target / "bin" / "ApacheJMeter.jar")
        elif name == f"ApacheJMeter_config-{version}.jar":
            with zipfile.ZipFile(jar) as archive:
                for member in archive.namelist():
                    if member.startswith("bin/") and not member.endswith("/") and ".." not in member:
                        destination = target / member
                        destination.parent.mkdir(parents=True, exist_ok=True)
                        destination.write_bytes(archive.read(member))
        elif name.startswith("ApacheJMeter_"):
            shutil.copy2(jar, target / "lib" / "ext" / name)
        else:
            shutil.copy2(jar, target / "lib" / name)
    missing = [part for part in ("bin/ApacheJMeter.jar", "bin/jmeter.properties", "bin/saveservice.properties",
                                 f"lib/ext/ApacheJMeter_core-{version}.jar", f"lib/ext/ApacheJMeter_http-{version}.jar")
               if not (target / part).exists()]
    if missing:
        raise JMeterInstallError(f"the jars fetched for JMeter {version} lack {', '.join(missing)}")
    wrapper = target / "bin" / "jmeter"
    wrapper.write_text(WRAPPER.format(version=version))
    wrapper.chmod(0o755)


def ensure_jmeter(home: Path | None = None) -> Path:
    """The `jmeter` wrapper, fetching and assembling JMeter once (later calls return at once)."""
    target = jmeter_home(home)
    wrapper = target / "bin" / "jmeter"
    if (target / ".complete").exists():
        return wrapper
    version = jmeter_version()
    mvn = _require("mvn")
    _require("java")
    staging = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    jars = staging / "jars"
    log.info("fetching Apache JMeter %s from Maven Central into %s", version, target)
    result = subprocess.run(
        [mvn, "-B", "-q", "-f", str(POM), "dependency:copy-dependencies", f"-DoutputDirectory={jars}",
         "-DincludeScope=runtime"],
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0 or not any(jars.glob("ApacheJMeter_core-*.jar")):
        shutil.rmtree(staging, ignore_errors=True)
        raise JMeterInstallError(f"Maven could not fetch Apache JMeter {version} (exit {result.returncode}); check that "
                                 f"Maven Central is reachable.\n{(result.stdout + result.stderr)[-3000:]}")
    built = staging / "home"
    try:
        assemble(jars, built, version)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    (built / ".complete").write_text(version)
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    built.rename(target)
    shutil.rmtree(staging, ignore_errors=True)
    return wrapper


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.local.jmeter", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["install", "status"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.action == "status":
        target = jmeter_home()
        if (target / ".complete").exists():
            print(target / "bin" / "jmeter")
            return 0
        print(f"Apache JMeter {jmeter_version()} is not installed in {target}; run `install`")
        return 3
    try:
        print(ensure_jmeter())
    except JMeterInstallError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
