"""A policy that looks at everything WASI gives it and prints what it saw (tests/policy_languages.rs).

It keeps every service; its stdout lines are the evidence: the clock, the random, the
environment, the files and the network a policy sees.
"""

import os
import random
import socket
import time

from wit_world import exports
from wit_world.imports import types as t


class Rules(exports.Rules):
    def metadata(self):
        return t.PolicyMetadata("wasi-probe", "0.1.0", "prints what WASI gives a policy", "0.2.0")

    def evaluate(self, facts):
        print(f"time {int(time.time())}")
        start = time.monotonic()
        time.sleep(5)
        print(f"slept {time.monotonic() - start}")
        print(f"random {random.random()} {os.urandom(8).hex()}")
        print(f"environ {sorted(os.environ)}")
        for probe, action in [("file", lambda: open("/etc/passwd").read()),
                              ("listdir", lambda: os.listdir("/")),
                              ("socket", lambda: socket.create_connection(("127.0.0.1", 22), timeout=1))]:
            try:
                action()
                print(f"{probe} allowed")
            except Exception as e:  # noqa: BLE001 - what fails is the evidence
                print(f"{probe} refused {type(e).__name__}")
        return t.Plan([t.ServicePlan(s.name, t.Decision.KEEP, []) for s in facts.services], [], [])
