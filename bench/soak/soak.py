#!/usr/bin/env python3
"""Simulated nights against a faulty CA: the proof of issue 12 ("one transient fault must never
leave a service on a worse certificate than it had").

Every night the tool (the binary built from this tree) runs once, under libfaketime N days after
the start, against:

* the real Pebble (Debian `pebble`), reached only through a fault-injecting HTTPS proxy on
  loopback: Pebble listens on 127.0.0.2:P, the proxy on 127.0.0.1:P with Pebble's own API
  certificate, and Pebble builds its URLs from the request's Host, so every ACME request of the
  tool goes through the proxy;
* a real nginx serving the `web` service (reload `nginx -s reload`), and two file-only services
  (`mail`, separate layout; `ftp`, combined) with a reload command that records its calls.

Faults, drawn per night from a seeded RNG: connection refused (proxy closed), resets (the
request read, the connection closed), HTTP 503 for some requests, slow responses, Pebble
restarted (it forgets accounts and pending orders and issues from a new root), a slow validator
(PEBBLE_VA_SLEEPTIME), nonce rejection (PEBBLE_WFE_NONCEREJECT), nginx's configuration broken for
the night (its reload fails; fixed the next night), and `kill -9` of the run after a random delay.

Pebble is Go and ignores libfaketime, so its certificates carry real dates (5 years: they stay
valid across the simulated months); the need to replace certificates comes from the harness,
which on some nights damages a service's certificate (an expired or self-signed one put in its
place, as an admin's mistake or another tool would).

After each night every service is checked — what its files hold, and for `web` what nginx
serves: CA-issued (chains to one of Pebble's roots, valid at the night's fake time, key matches),
placeholder (self-signed), expired, or missing. The figure that matters: service-nights on a
placeholder or an expired certificate after a *clean* night — one where the CA was reachable and
healthy, nothing killed the run and nginx's configuration was sound — i.e. when a CA-issued
certificate was obtainable. Target 0.

Run it with bench/soak/run.sh (installs what it needs); the figures go to stdout and to
--results (JSON). It only uses loopback, stops by itself (bounded nights, timeouts on every
subprocess) and stops what it started on exit and on Ctrl-C.
"""

import argparse
import asyncio
import collections
import datetime
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOST = "soak.example.test"
DAY = 86400


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(argv, timeout=120, text=True):
    return subprocess.run(argv, timeout=timeout, capture_output=True, text=text)


def openssl_selfsigned(cert, key, cn, days, ips=(), dns=()):
    san = ",".join([f"DNS:{d}" for d in dns] + [f"IP:{i}" for i in ips]) or f"DNS:{cn}"
    r = run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", key, "-out", cert, "-days", str(days), "-subj", f"/CN={cn}",
             "-addext", f"subjectAltName={san}"])
    if r.returncode != 0:
        raise RuntimeError(r.stderr)


# ---------------------------------------------------------------------------------------------
# The fault-injecting proxy: TLS in front (Pebble's API certificate), TLS to Pebble behind, one
# HTTP request per client connection.

class Proxy:
    def __init__(self, listen_port, upstream, cert, key, ca):
        self.listen_port = listen_port
        self.upstream = upstream
        self.mode = "pass"
        self.rng = random.Random(0)
        self.counts = collections.Counter()
        self.server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server_ctx.load_cert_chain(cert, key)
        self.client_ctx = ssl.create_default_context(cafile=ca)
        self.client_ctx.check_hostname = False
        self.loop = asyncio.new_event_loop()
        self.server = None
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.set_mode("pass")

    def set_mode(self, mode, seed=0):
        async def apply():
            self.mode = mode
            self.rng = random.Random(seed)
            if mode == "refused":
                if self.server:
                    self.server.close()
                    await self.server.wait_closed()
                    self.server = None
            elif self.server is None:
                self.server = await asyncio.start_server(self.handle, "127.0.0.1", self.listen_port,
                                                         ssl=self.server_ctx, reuse_address=True)
        asyncio.run_coroutine_threadsafe(apply(), self.loop).result(10)

    async def handle(self, reader, writer):
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            body = await asyncio.wait_for(reader.readexactly(length), 30) if length else b""
            mode = self.mode
            if mode == "reset" and self.rng.random() < 0.5:
                self.counts["reset"] += 1
                writer.transport.abort()
                return
            if mode == "http503" and self.rng.random() < 0.5:
                self.counts["http503"] += 1
                writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/problem+json\r\n"
                             b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")
                await writer.drain()
                writer.close()
                return
            if mode == "slow":
                self.counts["slow"] += 1
                await asyncio.sleep(2)
            lines = head.split(b"\r\n")
            lines = [l for l in lines if not l.lower().startswith(b"connection:")]
            request = b"\r\n".join(lines[:-2]) + b"\r\nConnection: close\r\n\r\n" + body
            up_r, up_w = await asyncio.wait_for(
                asyncio.open_connection(self.upstream[0], self.upstream[1], ssl=self.client_ctx), 10)
            up_w.write(request)
            await up_w.drain()
            response = await asyncio.wait_for(up_r.read(), 60)
            up_w.close()
            writer.write(response)
            await writer.drain()
        except Exception:
            pass
        finally:
            try:
                writer.close()
            except Exception:
                pass

    def stop(self):
        self.set_mode("refused")
        self.loop.call_soon_threadsafe(self.loop.stop)


# ---------------------------------------------------------------------------------------------
# The CA.

class Ca:
    def __init__(self, work, api_port):
        self.work = work
        self.api_port = api_port
        self.mgmt_port = free_port()
        self.http_port = free_port()
        self.dns_port, self.dns_mgmt = free_port(), free_port()
        self.cert, self.key = os.path.join(work, "pebble-api.pem"), os.path.join(work, "pebble-api.key")
        openssl_selfsigned(self.cert, self.key, "pebble", 3650, ips=("127.0.0.1", "127.0.0.2"), dns=("localhost",))
        self.roots = os.path.join(work, "pebble-roots.pem")
        open(self.roots, "w").close()
        self.log = open(os.path.join(work, "pebble.log"), "a")
        self.dns = subprocess.Popen(
            ["pebble-challtestsrv", "-http01", "", "-https01", "", "-tlsalpn01", "",
             "-dns01", f"127.0.0.1:{self.dns_port}", "-management", f"127.0.0.1:{self.dns_mgmt}",
             "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""],
            stdout=self.log, stderr=self.log)
        self.config = os.path.join(work, "pebble.json")
        with open(self.config, "w") as f:
            json.dump({"pebble": {
                "listenAddress": f"127.0.0.2:{api_port}", "managementListenAddress": f"127.0.0.2:{self.mgmt_port}",
                "certificate": self.cert, "privateKey": self.key, "httpPort": self.http_port,
                "tlsPort": free_port(), "ocspResponderURL": "", "externalAccountBindingRequired": False}}, f)
        self.proc = None
        self.restarts = 0

    def start(self, env_extra):
        env = dict(os.environ)
        env.update(env_extra)
        if "PEBBLE_VA_SLEEPTIME" not in env_extra:
            env["PEBBLE_VA_NOSLEEP"] = "1"
        env.setdefault("PEBBLE_WFE_NONCEREJECT", "5")
        self.proc = subprocess.Popen(["pebble", "-config", self.config, "-dnsserver", f"127.0.0.1:{self.dns_port}",
                                      "-strict=false"], stdout=self.log, stderr=self.log, env=env)
        wait_port("127.0.0.2", self.api_port)
        wait_port("127.0.0.2", self.mgmt_port)
        ctx = ssl.create_default_context(cafile=self.cert)
        ctx.check_hostname = False
        with urllib.request.urlopen(f"https://127.0.0.2:{self.mgmt_port}/roots/0", context=ctx, timeout=10) as r:
            root = r.read().decode()
        # Every root Pebble ever issued from stays trusted: a restart must not make the
        # certificates of earlier nights untrusted.
        with open(self.roots, "a") as f:
            f.write(root if root.endswith("\n") else root + "\n")

    def stop(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def restart(self, env_extra):
        self.stop()
        self.restarts += 1
        self.start(env_extra)

    def dead(self):
        """What of the CA died by itself (a harness failure, not the tool's): '' when all runs."""
        if self.dns.poll() is not None:
            return f"pebble-challtestsrv exited ({self.dns.returncode})"
        if self.proc is not None and self.proc.poll() is not None:
            return f"pebble exited ({self.proc.returncode})"
        return ""

    def close(self):
        self.stop()
        self.dns.kill()
        self.dns.wait(10)


def wait_port(host, port, seconds=15):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with socket.create_connection((host, port), 0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port}")


# ---------------------------------------------------------------------------------------------
# nginx.

class Nginx:
    def __init__(self, work, port, cert, key):
        self.prefix = os.path.join(work, "nginx")
        os.makedirs(os.path.join(self.prefix, "tmp"), exist_ok=True)
        self.conf = os.path.join(self.prefix, "nginx.conf")
        self.log = os.path.join(self.prefix, "error.log")
        p = self.prefix
        self.good = (
            f"worker_processes 1;\ndaemon off;\nuser root;\npid {p}/nginx.pid;\nerror_log {p}/error.log;\n"
            f"events {{ worker_connections 64; }}\nhttp {{\n  access_log off;\n  client_body_temp_path {p}/tmp;\n"
            f"  proxy_temp_path {p}/tmp; fastcgi_temp_path {p}/tmp; uwsgi_temp_path {p}/tmp; scgi_temp_path {p}/tmp;\n"
            f"  server {{\n    listen 127.0.0.1:{port} ssl;\n    ssl_certificate {cert};\n"
            f"    ssl_certificate_key {key};\n    return 200 \"ok\";\n  }}\n}}\n")
        self.fix()
        self.port = port
        # Its own process group: killing only the master (SIGKILL) would orphan its worker, which
        # keeps running with the listening socket; close() stops the whole group.
        self.proc = subprocess.Popen(["nginx", "-c", self.conf, "-p", p, "-e", self.log],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        wait_port("127.0.0.1", port)

    def reload_argv(self):
        return ["nginx", "-c", self.conf, "-p", self.prefix, "-e", self.log, "-s", "reload"]

    def break_config(self):
        with open(self.conf, "w") as f:
            f.write(self.good + "\nthis is not an nginx directive;\n")

    def fix(self):
        with open(self.conf, "w") as f:
            f.write(self.good)

    def served_fingerprint(self):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with socket.create_connection(("127.0.0.1", self.port), 5) as s:
            with ctx.wrap_socket(s, server_hostname=HOST) as t:
                return hashlib.sha256(t.getpeercert(binary_form=True)).hexdigest()

    def close(self):
        # SIGTERM: nginx's fast shutdown, the master stops its workers; then the group, in case.
        pgid = self.proc.pid
        try:
            self.proc.terminate()
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.proc.poll() is None:
            self.proc.wait(10)


# ---------------------------------------------------------------------------------------------
# Checking what a service holds.

def pem_blocks(path):
    try:
        text = open(path).read()
    except OSError:
        return []
    blocks, cur = [], None
    for line in text.splitlines():
        if line.startswith("-----BEGIN"):
            cur = [line]
        elif cur is not None:
            cur.append(line)
            if line.startswith("-----END"):
                blocks.append("\n".join(cur) + "\n")
                cur = None
    return blocks


def classify(cert_path, key_path, roots, fake_now, work):
    """ca | placeholder | expired | untrusted | mismatched | missing, and the leaf's fingerprint."""
    blocks = pem_blocks(cert_path)
    certs = [b for b in blocks if "CERTIFICATE" in b]
    if not certs:
        return "missing", None
    leaf = os.path.join(work, "leaf.pem")
    chain = os.path.join(work, "chain.pem")
    open(leaf, "w").write(certs[0])
    open(chain, "w").write("".join(certs[1:]))
    der = run(["openssl", "x509", "-in", leaf, "-outform", "DER"], text=False).stdout
    fingerprint = hashlib.sha256(der).hexdigest()
    dates = run(["openssl", "x509", "-in", leaf, "-noout", "-enddate", "-subject", "-issuer"]).stdout
    end = [l for l in dates.splitlines() if l.startswith("notAfter=")][0].split("=", 1)[1]
    not_after = datetime.datetime.strptime(end, "%b %d %H:%M:%S %Y %Z").replace(tzinfo=datetime.timezone.utc)
    subject = [l for l in dates.splitlines() if l.startswith("subject=")][0].split("=", 1)[1]
    issuer = [l for l in dates.splitlines() if l.startswith("issuer=")][0].split("=", 1)[1]
    key_pub = run(["openssl", "pkey", "-in", key_path, "-pubout"]).stdout
    cert_pub = run(["openssl", "x509", "-in", leaf, "-noout", "-pubkey"]).stdout
    if not key_pub or key_pub != cert_pub:
        return "mismatched", fingerprint
    if not_after.timestamp() <= fake_now:
        return "expired", fingerprint
    if subject == issuer:
        return "placeholder", fingerprint
    argv = ["openssl", "verify", "-CAfile", roots, "-attime", str(int(fake_now))]
    if certs[1:]:
        argv += ["-untrusted", chain]
    if run(argv + [leaf]).returncode != 0:
        return "untrusted", fingerprint
    return "ca", fingerprint


def damage(service, cert, key, kind, work):
    """An admin's mistake: a self-signed or an (already at the fake time) expired certificate."""
    c, k = os.path.join(work, "dmg.pem"), os.path.join(work, "dmg.key")
    openssl_selfsigned(c, k, HOST, 1 if kind == "expired" else 3650, dns=(HOST,))
    if service == "ftp":
        open(cert, "w").write(open(c).read() + open(k).read())
    else:
        shutil.copy(c, cert)
        shutil.copy(k, key)
    os.chmod(key if service != "ftp" else cert, 0o600)


# ---------------------------------------------------------------------------------------------

FAULTS = ["refused", "reset", "http503", "slow", "pebble-restart", "slow-validator", "nonce-reject",
          "nginx-broken", "kill"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nights", type=int, default=60)
    ap.add_argument("--seed", type=int, default=20261204)
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "debug", "checkallsslcerts"))
    ap.add_argument("--results", default=None)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    print(f"soak: {args.nights} nights, seed {args.seed}, binary {args.binary}", flush=True)

    work = tempfile.mkdtemp(prefix="checkallsslcerts-soak-")
    os.chmod(work, 0o755)
    stack = []
    try:
        api_port = free_port()
        ca = Ca(work, api_port)
        stack.append(ca.close)
        ca.start({})
        proxy = Proxy(api_port, ("127.0.0.2", api_port), ca.cert, ca.key, ca.cert)
        stack.append(proxy.stop)

        svc = {name: os.path.join(work, name) for name in ("web", "mail", "ftp")}
        for d in svc.values():
            os.makedirs(d)
        files = {
            "web": (os.path.join(svc["web"], "cert.pem"), os.path.join(svc["web"], "key.pem")),
            "mail": (os.path.join(svc["mail"], "cert.pem"), os.path.join(svc["mail"], "key.pem")),
            "ftp": (os.path.join(svc["ftp"], "combined.pem"), os.path.join(svc["ftp"], "combined.pem")),
        }
        for name, (c, k) in files.items():
            damage(name, c, k, "self-signed", work)
        nginx_port = free_port()
        nginx = Nginx(work, nginx_port, *files["web"])
        stack.append(nginx.close)
        recorder = os.path.join(work, "record-reload")
        open(recorder, "w").write(f"#!/bin/sh\necho \"$*\" >> {work}/reloads.log\n")
        os.chmod(recorder, 0o755)
        state = os.path.join(work, "state")
        config = os.path.join(work, "config.toml")

        def q(argv):
            return "[" + ", ".join(json.dumps(a) for a in argv) + "]"

        names = {name: [] for name in files}

        def toml_names(name):
            return "names = [" + ", ".join(json.dumps(n) for n in names[name]) + "]\n"

        def write_config():
          with open(config, "w") as f:
            f.write(
                f'hostname = "{HOST}"\nstate-dir = "{state}"\n\n[trust]\nextra-roots = ["{ca.roots}"]\n\n'
                f'[network]\ndns = false\nrevocation = false\nari = false\n\n'
                f'[acme]\ndirectory = "https://127.0.0.1:{api_port}/dir"\nca-bundle = "{ca.cert}"\n'
                f'email = "admin@example.com"\nlisten = "127.0.0.1:{ca.http_port}"\npending-wait-seconds = 10\n\n'
                f'[mail]\nenabled = false\n\n[probe]\ntimeout = 3\nwait = 10\n\n'
                f'[[service]]\nname = "web"\ncertificate = "{files["web"][0]}"\nkey = "{files["web"][1]}"\n'
                f'reload = {q(nginx.reload_argv())}\n{toml_names("web")}'
                f'probe = [{{ address = "127.0.0.1:{nginx_port}", protocol = "https" }}]\n\n'
                f'[[service]]\nname = "mail"\ncertificate = "{files["mail"][0]}"\nkey = "{files["mail"][1]}"\n'
                f'reload = {q([recorder, "mail"])}\n{toml_names("mail")}\n'
                f'[[service]]\nname = "ftp"\nlayout = "combined"\ncertificate = "{files["ftp"][0]}"\n'
                f'reload = {q([recorder, "ftp"])}\n{toml_names("ftp")}')

        write_config()

        start = time.time()
        faults = collections.Counter()
        exits = collections.Counter()
        bad_nights = []          # (night, service, state) on clean nights
        states = collections.Counter()
        nights_log = []
        for night in range(1, args.nights + 1):
            # A CA or nginx that died by itself would make every later night look like the
            # tool's failure: stop instead, as a failure of the harness.
            dead = ca.dead() or (f"nginx exited ({nginx.proc.returncode})" if nginx.proc.poll() is not None else "")
            if dead:
                raise RuntimeError(f"soak: before night {night}: {dead}; stopping (a harness failure, not a figure)")
            fake_now = start + night * DAY
            # This night's faults: most nights are clean; a fault night has one or two.
            todays = []
            if rng.random() < 0.45:
                todays = rng.sample(FAULTS, rng.choice([1, 1, 2]))
            # And the harness breaks a service now and then (a certificate that must be replaced).
            damaged = []
            if rng.random() < 0.45:
                name = rng.choice(list(files))
                kind = rng.choice(["expired", "self-signed"])
                damage(name, *files[name], kind, work)
                damaged.append((name, kind))
                # Half the time the admin also gave that service a new site name: the kept
                # certificates do not cover it, so the CA must be asked.
                if rng.random() < 0.7:
                    names[name].append(f"site{night}.{HOST}")
                    write_config()
                    damaged.append((name, "new-name"))
            env_extra = {}
            if "slow-validator" in todays:
                env_extra["PEBBLE_VA_SLEEPTIME"] = "12"
            if "nonce-reject" in todays:
                env_extra["PEBBLE_WFE_NONCEREJECT"] = "40"
            if "pebble-restart" in todays or "slow-validator" in todays or "nonce-reject" in todays:
                ca.restart(env_extra)
            for mode in ("refused", "reset", "http503", "slow"):
                if mode in todays:
                    proxy.set_mode(mode, seed=rng.randrange(1 << 30))
                    break
            else:
                proxy.set_mode("pass")
            if "nginx-broken" in todays:
                nginx.break_config()
            faults.update(todays)

            argv = ["faketime", "-f", f"@{datetime.datetime.fromtimestamp(fake_now, datetime.timezone.utc):%Y-%m-%d %H:%M:%S}",
                    args.binary, "--config", config, "--json", "--no-retry"]
            env = dict(os.environ, TZ="UTC", NO_COLOR="1", FAKETIME_DONT_FAKE_MONOTONIC="1")
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
            if "kill" in todays:
                time.sleep(rng.uniform(0.05, 1.5))
                proc.kill()
            try:
                out, err = proc.communicate(timeout=600)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
            code = proc.returncode
            exits[code] += 1

            # The night is over: the harness repairs what it broke outside the tool.
            if "nginx-broken" in todays:
                nginx.fix()
            if any(m in todays for m in ("refused", "reset", "http503", "slow")):
                proxy.set_mode("pass")
            if "slow-validator" in todays or "nonce-reject" in todays:
                ca.restart({})

            clean = not todays
            night_states = {}
            for name, (c, k) in files.items():
                st, fp = classify(c, k, ca.roots, fake_now, work)
                if name == "web" and st == "ca":
                    try:
                        if nginx.served_fingerprint() != fp:
                            st = "ca-not-served"
                    except OSError:
                        st = "not-served"
                night_states[name] = st
                states[st] += 1
                if clean and st != "ca":
                    bad_nights.append((night, name, st))
            nights_log.append({"night": night, "faults": todays, "damaged": damaged, "exit": code,
                               "states": night_states})
            print(f"night {night:3d}: exit {code:4d} faults {','.join(todays) or '-':28s} "
                  f"damaged {','.join(n + ':' + k for n, k in damaged) or '-':22s} "
                  + " ".join(f"{n}={s}" for n, s in night_states.items()), flush=True)

        history = []
        hist_path = os.path.join(state, "acme", "history.jsonl")
        if os.path.exists(hist_path):
            history = [json.loads(l) for l in open(hist_path) if l.strip()]
        events = collections.Counter(e.get("event") for e in history)
        du = run(["du", "-sb", state]).stdout.split()
        size = int(du[0]) if du else 0
        issued = events.get("issued", 0)
        summary = {
            "nights": args.nights,
            "seed": args.seed,
            "faults": dict(faults),
            "proxy-faults-injected": dict(proxy.counts),
            "exit-codes": {str(k): v for k, v in sorted(exits.items())},
            "service-night-states": dict(states),
            "clean-nights": sum(1 for n in nights_log if not n["faults"]),
            "bad-service-nights-on-clean-nights": len(bad_nights),
            "bad": bad_nights,
            "history-events": dict(events),
            "orders-opened": events.get("order-opened", 0),
            # "order-opened" is logged once the CA accepted the order; a failure before that (CA
            # unreachable, refused) is only an "order-failed" without an order URL.
            "orders-failed-before-opening": sum(1 for e in history
                                                if e.get("event") == "order-failed" and not e.get("order-url")),
            "issued": issued,
            "orders-per-issued-certificate": round(events.get("order-opened", 0) / issued, 2) if issued else None,
            "state-dir-bytes": size,
            "pebble-restarts": ca.restarts,
        }
        print(json.dumps(summary, indent=2))
        if args.results:
            with open(args.results, "w") as f:
                json.dump({"summary": summary, "nights": nights_log}, f, indent=2)
        return 0 if not bad_nights else 1
    finally:
        for stop in reversed(stack):
            try:
                stop()
            except Exception as e:  # noqa: BLE001 - cleanup goes on
                print(f"soak: cleanup: {e}", file=sys.stderr)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"soak: work directory kept: {work}")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    # Ctrl-C stops the soak (and the cleanup runs) even when started with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main())
