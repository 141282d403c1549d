"""STACKYARD_HOME: where a local cluster keeps its secret, configs, data and
logs, and where clients look for the cluster to talk to.

    $STACKYARD_HOME/secret          the cluster secret (mode 0600)
    $STACKYARD_HOME/cluster.json    daemons: name, role, pid, address, config, log
    $STACKYARD_HOME/conf/NAME.toml  one config per daemon
    $STACKYARD_HOME/conf/shape.json the cluster's shape (`cluster up` settings)
    $STACKYARD_HOME/data/NAME/      its disk
    $STACKYARD_HOME/logs/NAME.log
    $STACKYARD_HOME/run/NAME.addr   host:port, written by the daemon once bound
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path


def default_home() -> Path:
    return Path(os.environ.get("STACKYARD_HOME") or Path.home() / ".stackyard").expanduser()


@dataclass
class Home:
    root: Path

    @classmethod
    def at(cls, root: str | os.PathLike | None = None) -> Home:
        return cls(Path(root).expanduser().resolve() if root else default_home().resolve())

    @property
    def secret_file(self) -> Path:
        return self.root / "secret"

    @property
    def shape_file(self) -> Path:
        return self.root / "conf" / "shape.json"

    @property
    def state_file(self) -> Path:
        return self.root / "cluster.json"

    def conf(self, name: str) -> Path:
        return self.root / "conf" / f"{name}.toml"

    def data(self, name: str) -> Path:
        return self.root / "data" / name

    def log(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"

    def addr_file(self, name: str) -> Path:
        return self.root / "run" / f"{name}.addr"

    def make_dirs(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)               # the cluster's files are its user's alone
        for sub in ("conf", "data", "logs", "run"):
            (self.root / sub).mkdir(mode=0o700, exist_ok=True)

    def read_state(self) -> dict | None:
        try:
            return json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return None
        except json.JSONDecodeError as exc:
            raise ValueError(f"{self.state_file}: damaged ({exc}); remove it and run "
                             "`yard cluster up` again") from None

    def write_state(self, state: dict) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        os.replace(tmp, self.state_file)
