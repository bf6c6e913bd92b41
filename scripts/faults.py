#!/usr/bin/env python3
"""fleet's fault suite: scripted faults against a running fleet while a load generator counts every request.

Run it through scripts/faults.sh, which builds what is missing and finds the real llama-server and model. Each
fault starts its own fleet (`fleet up --detach`) from its own fleet.json in a temporary folder, injects the fault
under load, measures, and stops the fleet (`fleet down`). Python 3 standard library only.

Every completion the load generator sends is counted once, as
  ok         HTTP 200 and complete (a stream that reached `data: [DONE]`; a body that is JSON with `choices`)
  failed     a non-200 answer (an explicit refusal, with an error body)
  truncated  HTTP 200 whose stream carried an error event (`data: {"error": ...}`), or whose body broke with a
             transport error (incomplete chunked body, connection reset after the head)
  lost       no answer at all (connection closed or reset before a status line, no answer within the timeout),
             or a 200 that ended cleanly but incomplete (a stream without [DONE] and without an error event, a
             body that is not a complete JSON answer)
  refused    the connection was refused before the request was sent (not started; reported in the notes)

Usage (normally through scripts/faults.sh):
  faults.py --work DIR --fleet BIN --fake BIN [--llama-server BIN --model GGUF] [--only a,b] [--fake-only]
  faults.py ... --soak 30m
"""

import argparse
import errno
import http.client
import json
import os
import resource
import select
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback

HOST = "127.0.0.1"
REQUEST_TIMEOUT = 120.0  # per request: connect, head and every read
FAULTS = ["kill9", "sigstop", "hotswap", "reload", "sigterm", "clients", "idle20k", "malformed", "stall", "streams1000"]
# Each fault gets its own listen port (18801...) and its own instance port range (189x0-189x9), so a process left
# over by one fault can never be mistaken for the next one's. The soak uses 18809 and 18980-18989; the
# unmanaged endpoint of the reload fault 19001.
FAULT_INDEX = {name: i for i, name in enumerate(FAULTS)}
SOAK_LISTEN = 18809
SOAK_PORTS = "18980-18989"
ENDPOINT_PORT = 19001
PROMPT = "Write one sentence about the sea."


def log(message):
    print(f"[faults {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------------------
# Processes


def proc_state(pid):
    """The one-letter state of a process from /proc (R, S, T, Z...), or None when it does not exist."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        return stat[stat.rindex(")") + 2]
    except (OSError, ValueError, IndexError):
        return None


def alive(pid):
    return pid is not None and proc_state(pid) not in (None, "Z", "X")


def running(pid):
    """Alive and not stopped (SIGSTOP puts a process in state T)."""
    return alive(pid) and proc_state(pid) not in ("T", "t")


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def proc_status_field(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def open_files_limit(pid):
    try:
        with open(f"/proc/{pid}/limits") as f:
            for line in f:
                if line.startswith("Max open files"):
                    parts = line.split()
                    return f"{parts[3]} (hard {parts[4]})"
    except OSError:
        pass
    return "?"


def accept_queue(port):
    """(connections waiting in the listen socket's accept queue, its limit) for 127.0.0.1:port, from
    /proc/net/tcp and `ss`; (None, None) when unknown."""
    waiting = limit = None
    try:
        with open("/proc/net/tcp") as f:
            for line in f:
                fields = line.split()
                if len(fields) > 4 and fields[1].endswith(f":{port:04X}") and fields[3] == "0A":
                    waiting = int(fields[4].split(":")[1], 16)
    except (OSError, ValueError):
        pass
    try:
        out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, timeout=5).stdout
        limit = int(out.split()[2]) if out.split() else None
    except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
        pass
    return waiting, limit


# --------------------------------------------------------------------------------------------------------------
# HTTP


def http_get(port, path, timeout=5.0):
    """(status, body bytes). Raises OSError / HTTPException on transport errors."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def timed_get(port, path, timeout=5.0):
    """(status, seconds to connect, seconds in all) of one GET on a fresh connection."""
    t0 = time.monotonic()
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.connect()
        connected = time.monotonic() - t0
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        return resp.status, connected, time.monotonic() - t0
    finally:
        conn.close()


def get_json(port, path, timeout=5.0):
    status, body = http_get(port, path, timeout)
    if status != 200:
        raise RuntimeError(f"GET {path}: HTTP {status}: {body[:200]!r}")
    return json.loads(body)


class Result:
    __slots__ = ("kind", "status", "detail", "start", "end", "stream", "model", "tag")

    def __init__(self, kind, status=None, detail="", start=0.0, stream=False, model="", tag=""):
        self.kind = kind  # ok, failed, truncated, lost, refused, abandoned (closed by this client on purpose)
        self.status = status
        self.detail = detail
        self.start = start
        self.end = time.monotonic()
        self.stream = stream
        self.model = model
        self.tag = tag


class TransportBroke(Exception):
    pass


class Request:
    """One chat completion, classified. `pace` (seconds) sleeps after every SSE data line (a slow reader);
    `abandon_after` closes the socket after that many data lines (a client that vanishes); `rcvbuf` shrinks the
    client's receive buffer so a slow reader pushes back on the server; `abort()` closes it from another thread."""

    def __init__(self, port, model, stream, max_tokens=None, timeout=REQUEST_TIMEOUT, pace=0.0,
                 abandon_after=None, rcvbuf=None, tag="", progress=None, stall_after=None, on_stall=None):
        self.port, self.model, self.stream = port, model, stream
        # After `stall_after` data lines, `on_stall()` runs before anything more is read (a client that stops
        # reading for as long as it takes).
        self.stall_after, self.on_stall = stall_after, on_stall
        self.lines = 0
        self.progress = progress  # called with +1 once a stream's first event is in, -1 when that stream ends
        self.max_tokens, self.timeout, self.pace = max_tokens, timeout, pace
        self.abandon_after, self.rcvbuf, self.tag = abandon_after, rcvbuf, tag
        self.sock = None
        self.aborted = False
        self.t0 = time.monotonic()

    def body(self):
        body = {"model": self.model, "messages": [{"role": "user", "content": PROMPT}], "stream": self.stream}
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        return json.dumps(body).encode()

    def result(self, kind, status=None, detail=""):
        return Result(kind, status, detail, self.t0, self.stream, self.model, self.tag)

    def abort(self):
        self.aborted = True
        sock = self.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def run(self):
        self.t0 = time.monotonic()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if self.rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        sock.settimeout(self.timeout)
        try:
            sock.connect((HOST, self.port))
        except ConnectionRefusedError:
            sock.close()
            return self.result("refused", detail="connection refused")
        except OSError as e:
            sock.close()
            return self.result("lost", detail=f"connect: {type(e).__name__}: {e}")
        self.sock = sock
        conn = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout)
        conn.sock = sock
        try:
            result = self._exchange(conn)
        finally:
            conn.close()
        if self.aborted and result.kind != "abandoned":  # closed on purpose by this client: not the fleet's doing
            result.kind, result.detail = "abandoned", f"closed by the client ({result.kind}: {result.detail})"
        return result

    def _exchange(self, conn):
        send_error = None
        try:
            conn.request("POST", "/v1/chat/completions", self.body(), {"Content-Type": "application/json"})
        except OSError as e:
            send_error = e  # the server may still have answered (e.g. it refused and closed): read what came
        try:
            resp = conn.getresponse()
        except TimeoutError:
            return self.result("lost", detail=f"no answer within {self.timeout:g} s")
        except (OSError, http.client.HTTPException) as e:
            extra = f" (sending failed first: {send_error})" if send_error else ""
            return self.result("lost", detail=f"no status line: {type(e).__name__}: {e}{extra}")
        if resp.status != 200:
            try:
                data = resp.read()
            except (OSError, http.client.HTTPException):
                data = b""
            try:
                error = json.loads(data).get("error")
                message = (error.get("code") or error.get("message")) if isinstance(error, dict) else str(error)
            except (ValueError, AttributeError):
                message = "no error body: " + data[:80].decode(errors="replace")
            return self.result("failed", resp.status, f"HTTP {resp.status} {message}")
        return self._stream(resp) if self.stream else self._whole(resp)

    @staticmethod
    def _read_chunks(resp):
        """Yields the body's bytes. Raises TimeoutError, or TransportBroke for a body that ended early."""
        while True:
            try:
                data = resp.read1(65536)
            except TimeoutError:
                raise
            except (OSError, http.client.HTTPException, ValueError) as e:
                raise TransportBroke(f"{type(e).__name__}: {e}")
            if not data:
                if resp.length:  # Content-Length promised more
                    raise TransportBroke(f"body ended {resp.length} bytes short of its Content-Length")
                return
            yield data

    def _stream(self, resp):
        try:
            return self._read_stream(resp)
        finally:
            if self.progress and getattr(self, "counted", False):
                self.progress(-1)

    def _read_stream(self, resp):
        done, error, lines, buffered = False, None, 0, b""
        try:
            for data in self._read_chunks(resp):
                buffered += data
                while b"\n" in buffered:
                    line, buffered = buffered.split(b"\n", 1)
                    line = line.strip()
                    if not line.startswith(b"data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == b"[DONE]":
                        done = True
                    elif payload.startswith(b"{") and b'"error"' in payload:
                        try:
                            obj = json.loads(payload)
                        except ValueError:
                            obj = None
                        if isinstance(obj, dict) and "error" in obj:
                            e = obj["error"]
                            error = (e.get("code") or e.get("message")) if isinstance(e, dict) else str(e)
                    lines += 1
                    self.lines = lines
                    if self.stall_after is not None and lines == self.stall_after and self.on_stall:
                        self.on_stall()
                    if lines == 1 and self.progress:
                        self.counted = True
                        self.progress(1)
                    if self.abandon_after is not None and lines >= self.abandon_after:
                        self.abort()
                        return self.result("abandoned", 200, f"closed after {lines} events")
                    if self.pace:
                        time.sleep(self.pace)
        except TimeoutError:
            return self.result("lost", 200, f"stream stalled: nothing for {self.timeout:g} s after {lines} events")
        except TransportBroke as e:
            if error:
                return self.result("truncated", 200, f"error event ({error}), then the body broke")
            return self.result("truncated", 200, f"stream broke without an error event: {e}")
        if error:
            return self.result("truncated", 200, f"error event ({error}), body ended cleanly")
        if done:
            return self.result("ok", 200)
        return self.result("lost", 200, "stream ended cleanly without [DONE] or an error event")

    def _whole(self, resp):
        data = b""
        try:
            for chunk in self._read_chunks(resp):
                data += chunk
        except TimeoutError:
            return self.result("lost", 200, f"body stalled: nothing for {self.timeout:g} s after {len(data)} bytes")
        except TransportBroke as e:
            return self.result("truncated", 200, f"body broke: {e}")
        try:
            obj = json.loads(data)
        except ValueError:
            return self.result("lost", 200, "200 whose body ended cleanly but is not JSON")
        if isinstance(obj, dict) and obj.get("choices"):
            return self.result("ok", 200)
        if isinstance(obj, dict) and "error" in obj:
            return self.result("truncated", 200, f"200 with an error body: {str(obj['error'])[:100]}")
        return self.result("lost", 200, "200 with JSON that has no choices")


def completion(port, model, stream=False, max_tokens=None, timeout=REQUEST_TIMEOUT, tag=""):
    return Request(port, model, stream, max_tokens, timeout, tag=tag).run()


# --------------------------------------------------------------------------------------------------------------
# Load generator


class Load:
    """`workers` threads, each sending one completion after another (streamed and not, alternating) until
    stopped. Every answer is kept as a Result."""

    everyone = []  # every Load started, so a fault that ends in an exception leaves none running

    def __init__(self, port, model, workers, max_tokens=None, mode="mixed", name="load"):
        self.port, self.model, self.workers = port, model, workers
        self.max_tokens, self.mode, self.name = max_tokens, mode, name
        self.results = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = []
        self.streaming = 0  # streams between their first event and their end, now

    def start(self):
        Load.everyone.append(self)
        for index in range(self.workers):
            thread = threading.Thread(target=self._worker, args=(index,), daemon=True, name=f"{self.name}-{index}")
            thread.start()
            self.threads.append(thread)
        return self

    def _worker(self, index):
        count = 0
        while not self.stopping.is_set():
            stream = {"stream": True, "plain": False}.get(self.mode, (index + count) % 2 == 0)
            count += 1
            result = Request(self.port, self.model, stream, self.max_tokens, tag=self.name, progress=self._progress).run()
            with self.lock:
                self.results.append(result)
            if result.kind == "refused":
                self.stopping.wait(0.2)
            elif result.kind != "ok":
                self.stopping.wait(0.05)

    def _progress(self, delta):
        with self.lock:
            self.streaming += delta

    def stop_starting(self):
        """No new requests from now on; the ones in flight go on."""
        self.stopping.set()

    def stop(self, timeout=REQUEST_TIMEOUT + 30):
        """Stops starting requests and waits for the ones in flight; returns how many workers still wait."""
        self.stopping.set()
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        return sum(1 for t in self.threads if t.is_alive())

    def snapshot(self):
        with self.lock:
            return list(self.results)


def tally(results):
    counts = {"started": 0, "ok": 0, "failed": 0, "truncated": 0, "lost": 0, "refused": 0, "abandoned": 0}
    details = {}
    for r in results:
        counts[r.kind] = counts.get(r.kind, 0) + 1
        if r.kind not in ("refused", "abandoned"):
            counts["started"] += 1
        if r.kind in ("failed", "truncated", "lost"):
            key = (r.kind, r.detail[:160])
            details[key] = details.get(key, 0) + 1
    return counts, details


def longest(results):
    durations = [r.end - r.start for r in results if r.kind not in ("refused", "abandoned")]
    return max(durations) if durations else None


# --------------------------------------------------------------------------------------------------------------
# A fleet under test


class Fleet:
    def __init__(self, suite, name, listen, port_range, server, models, extra=None):
        self.suite, self.name = suite, name
        self.dir = os.path.join(suite.work, name)
        os.makedirs(self.dir, exist_ok=True)
        self.path = os.path.join(self.dir, "fleet.json")
        self.port = listen
        self.config = {
            "listen": f"{HOST}:{listen}",
            "portRange": port_range,
            "stateDir": os.path.join(self.dir, "state"),
            "llamaServer": server,
            "healthCheck": {"interval": "1s", "timeout": "1s"},
            "models": models,
        }
        self.config.update(extra or {})
        self.controller_pid = None
        self.pids = set()  # every instance pid seen, for the final sweep
        self.down_done = False
        self.write()
        suite.fleets.append(self)

    def write(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.config, f, indent=2)
        os.replace(tmp, self.path)

    def cli(self, *args, timeout=300):
        started = time.monotonic()
        proc = subprocess.run([self.suite.fleet_bin, *args, "--config", self.path], capture_output=True, text=True,
                              timeout=timeout, env=self.suite.env, cwd=self.dir)
        return proc.returncode, (proc.stdout + proc.stderr).strip(), time.monotonic() - started

    def up(self):
        rc, out, took = self.cli("up", "--detach", timeout=400)
        try:
            self.controller_pid = self.status()["controller"]["pid"]
        except Exception:
            pass
        if rc != 0:
            raise RuntimeError(f"fleet up failed (exit {rc}):\n{out}\ncontroller log: {self.controller_log_tail()}")
        log(f"{self.name}: fleet up in {took:.1f}s (controller pid {self.controller_pid})")
        return took

    def controller_log_tail(self, lines=15):
        try:
            with open(os.path.join(self.config["stateDir"], "controller.log"), errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(none)"

    def status(self, timeout=5.0):
        status = get_json(self.port, "/status", timeout)
        for instance in status.get("instances", []):
            if instance.get("pid"):
                self.pids.add(instance["pid"])
        return status

    def instances(self, model=None, timeout=5.0):
        return [i for i in self.status(timeout)["instances"] if model is None or i["model"] == model]

    def in_flight(self):
        status = self.status()
        flight = sum((i.get("traffic") or {}).get("inFlight", 0) for i in status["instances"])
        queued = sum(m.get("queueDepth", 0) for m in status["models"])
        return flight, queued

    def wait_ready(self, since, expected, timeout, exclude_pids=(), during=None):
        """Seconds from `since` until `expected` instances are all ready, each process running (not stopped, not a
        zombie, not in `exclude_pids`); None on timeout. `during(now)` runs every poll (to go on with the fault)."""
        deadline = since + timeout
        while time.monotonic() < deadline:
            if during:
                during(time.monotonic())
            try:
                status = self.status(timeout=2)
            except Exception:
                time.sleep(0.2)
                continue
            instances = status["instances"]
            good = len(instances) == expected and all(
                i["state"] == "ready"
                and (not i.get("managed", True) or (i.get("pid") not in exclude_pids and running(i.get("pid"))))
                for i in instances)
            if good:
                return time.monotonic() - since
            time.sleep(0.1)
        return None

    def down(self):
        if self.down_done:
            return
        self.down_done = True
        for instance_pid in self.pids:  # a process left stopped by a fault would only delay the stop
            if proc_state(instance_pid) in ("T", "t") and self.owns(instance_pid):
                os.kill(instance_pid, signal.SIGCONT)
        pid = self.controller_pid
        if pid is not None and alive(pid):
            try:
                rc, out, _ = self.cli("down", "--timeout", "30", timeout=60)
                if rc != 0:
                    log(f"{self.name}: fleet down exited {rc}: {out}")
            except subprocess.TimeoutExpired:
                log(f"{self.name}: fleet down timed out")
        self.sweep()

    def owns(self, pid):
        """Whether `pid` runs this fleet's controller or one of the suite's server binaries."""
        line = cmdline(pid)
        return self.path in line or self.suite.fake_bin in line or (
            self.suite.llama_server is not None and self.suite.llama_server in line)

    def sweep(self):
        """Kills (by pid) what this fleet left running: its controller, and instance processes it started."""
        left = []
        for pid in [self.controller_pid, *sorted(self.pids)]:
            if pid is None or not alive(pid):
                continue
            if self.owns(pid):
                left.append(pid)
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        if left:
            log(f"{self.name}: killed leftover processes {left}")
        return left


def fake_model(suite, replicas, parallel, tokens, delay, loading=0.3, extra=None):
    entry = {
        "path": suite.fake_gguf, "replicas": replicas, "parallel": parallel,
        "args": ["--fake-tokens", str(tokens), "--fake-token-delay", str(delay), "--fake-loading-delay", str(loading)],
    }
    entry.update(extra or {})
    return entry


def real_model(suite, replicas, parallel, extra=None):
    entry = {"path": suite.model, "replicas": replicas, "parallel": parallel, "contextSize": 2048, "threads": 1,
             "gpuLayers": 0}
    entry.update(extra or {})
    return entry


class Outcome:
    def __init__(self, name):
        self.name = name
        self.results = []
        self.recovery = None  # seconds, or a string ("-", ">60 s", "never")
        self.notes = []
        self.misses = []  # goals this fault missed beyond the counts (e.g. a probe slower than 1 s)
        self.error = None
        self.server = ""

    def note(self, text):
        self.notes.append(text)
        log(f"{self.name}: {text}")


def fmt_s(seconds):
    if seconds is None:
        return "-"
    return f"{seconds:.1f} s" if seconds >= 0.1 else f"{seconds * 1000:.0f} ms"


# --------------------------------------------------------------------------------------------------------------
# The faults


class Suite:
    def __init__(self, args):
        self.work = os.path.abspath(args.work)
        self.fleet_bin = os.path.abspath(args.fleet)
        self.fake_bin = os.path.abspath(args.fake)
        self.llama_server = os.path.abspath(args.llama_server) if args.llama_server else None
        self.model = os.path.abspath(args.model) if args.model else None
        self.fake_only = args.fake_only or not (self.llama_server and self.model)
        self.fleets = []
        self.children = []  # subprocess.Popen objects this suite started itself
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("FLEET_API_KEYS", "FLEET_ADMIN_KEYS", "FLEET_API_KEY", "LLAMACPP_MODEL_PATH")}
        os.makedirs(self.work, exist_ok=True)
        self.fake_gguf = os.path.join(self.work, "fake.gguf")
        with open(self.fake_gguf, "wb") as f:
            f.write(b"GGUF" + b"0" * 28)

    def ports(self, name):
        index = FAULT_INDEX[name]
        return 18801 + index, f"{18900 + 10 * index}-{18909 + 10 * index}"

    def fleet(self, name, real, models, extra=None):
        listen, port_range = self.ports(name)
        server = self.llama_server if real and not self.fake_only else self.fake_bin
        return Fleet(self, name, listen, port_range, server, models, extra)

    def cleanup(self):
        for fleet in self.fleets:
            try:
                fleet.down()
            except Exception as e:  # keep cleaning up the others
                log(f"cleanup of {fleet.name}: {e}")
        for child in self.children:
            if child.poll() is None:
                child.kill()
                try:
                    child.wait(5)
                except subprocess.TimeoutExpired:
                    pass

    @staticmethod
    def wait_for(predicate, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if predicate():
                    return True
            except Exception:
                pass
            time.sleep(0.05)
        return False

    def busiest(self, fleet, model, wait=5.0):
        """The ready instance of `model` with the most requests in flight (waits up to `wait` for one with any)."""
        deadline = time.monotonic() + wait
        while True:
            ready = [i for i in fleet.instances(model) if i["state"] == "ready" and i.get("pid")]
            ready.sort(key=lambda i: -(i.get("traffic") or {}).get("inFlight", 0))
            if ready and ((ready[0].get("traffic") or {}).get("inFlight", 0) > 0 or time.monotonic() > deadline):
                ready[0]["traffic"] = ready[0].get("traffic") or {"inFlight": 0}
                return ready[0]
            time.sleep(0.05)

    @staticmethod
    def finish_load(out, load):
        hung = load.stop()
        out.results += load.snapshot()
        if hung:
            out.misses.append(f"{hung} {load.name} workers still waiting {REQUEST_TIMEOUT + 30:.0f} s after the end")

    # Each fault fills an Outcome. kill9 and hotswap run on the real llama-server unless --fake-only.

    def kill9(self, out):
        real = not self.fake_only
        model = real_model(self, 2, 2) if real else fake_model(self, 2, 2, tokens=40, delay=0.05)
        out.server = "real" if real else "fake"
        fleet = self.fleet("kill9", True, {"m": model})
        fleet.up()
        load = Load(fleet.port, "m", workers=4, max_tokens=24 if real else None).start()
        time.sleep(4)
        self.wait_for(lambda: load.streaming >= 2, 10)  # so the kill is likely to cut a stream under way
        victim = self.busiest(fleet, "m")
        t0 = time.monotonic()
        os.kill(victim["pid"], signal.SIGKILL)
        out.note(f"kill -9 {victim['id']} (pid {victim['pid']}, {victim['traffic']['inFlight']} requests in flight; "
                 f"{load.streaming} streams under way in all) under 4 workers")
        recovery = fleet.wait_ready(t0, 2, 90, exclude_pids={victim["pid"]})
        out.recovery = recovery if recovery is not None else ">90 s"
        time.sleep(3)
        self.finish_load(out, load)
        fleet.down()

    def sigstop(self, out):
        out.server = "fake"
        fleet = self.fleet("sigstop", False, {"m": fake_model(self, 2, 2, tokens=30, delay=0.05)})
        fleet.up()
        load = Load(fleet.port, "m", workers=4).start()
        time.sleep(3)
        self.wait_for(lambda: load.streaming >= 2, 10)
        victim = self.busiest(fleet, "m")
        pid = victim["pid"]
        t0 = time.monotonic()
        os.kill(pid, signal.SIGSTOP)
        out.note(f"kill -STOP {victim['id']} (pid {pid}, {victim['traffic']['inFlight']} in flight) under 4 workers")
        events = {}

        def during(now):
            if "cont" not in events and now - t0 >= 20:
                events["cont"] = now - t0
                if alive(pid):
                    os.kill(pid, signal.SIGCONT)
                    events["cont_sent"] = True
            if "left" not in events or "replaced" not in events:
                try:
                    replica = [i for i in fleet.instances("m") if i["id"] == victim["id"]]
                except Exception:
                    return
                mine = [i for i in replica if i.get("pid") == pid]
                if "left" not in events and (not mine or mine[0]["state"] != "ready"
                                             or not (mine[0].get("traffic") or {}).get("inRotation", True)):
                    events["left"] = now - t0
                if "replaced" not in events and not mine:
                    events["replaced"] = now - t0

        recovery = fleet.wait_ready(t0, 2, 90, during=during)
        while "cont" not in events:  # recovered before 20 s: still continue the process on time
            during(time.monotonic())
            time.sleep(0.1)
        out.recovery = recovery if recovery is not None else ">90 s"
        out.note("it left rotation after " + (fmt_s(events["left"]) if "left" in events else "- (never)")
                 + ", its process was " + (f"replaced after {fmt_s(events['replaced'])}" if "replaced" in events
                                           else "never replaced")
                 + ("; SIGCONT at 20 s" if events.get("cont_sent") else "; it was gone by 20 s (no SIGCONT needed)"))
        time.sleep(3)
        self.finish_load(out, load)
        out.note(f"longest request {fmt_s(longest(out.results))}")
        fleet.down()

    def hotswap(self, out):
        real = not self.fake_only
        model = real_model(self, 2, 2) if real else fake_model(self, 2, 2, tokens=40, delay=0.05)
        out.server = "real" if real else "fake"
        fleet = self.fleet("hotswap", True, {"m": model})
        fleet.up()
        load = Load(fleet.port, "m", workers=3, max_tokens=24 if real else None).start()
        time.sleep(3)
        before = {i["id"]: i["pid"] for i in fleet.instances("m")}
        t0 = time.monotonic()
        rc, text, took = fleet.cli("restart", "m", timeout=400)
        last = " / ".join(line.strip() for line in text.splitlines() if line.strip())[:300]
        out.note(f"`fleet restart m` under 3 workers: exit {rc} after {took:.1f}s ({last})")
        if rc != 0:
            out.misses.append(f"fleet restart failed (exit {rc}: {last})")
        recovery = fleet.wait_ready(t0, 2, 60, exclude_pids=set(before.values()))
        out.recovery = recovery if recovery is not None else ">60 s"
        time.sleep(2)
        self.finish_load(out, load)
        fleet.down()

    def reload(self, out):
        out.server = "fake"
        a = fake_model(self, 2, 2, tokens=20, delay=0.05)
        b = fake_model(self, 2, 2, tokens=200, delay=0.02)
        fleet = self.fleet("reload", False, {"a": a})
        fleet.up()
        steps = []
        endpoint = None
        loads = [Load(fleet.port, "a", workers=4, name="load-a").start()]

        def step(label, expected, timeout=60):
            """Reloads the edited fleet.json; seconds until status shows `expected` instances, all ready."""
            fleet.write()
            t0 = time.monotonic()
            rc, text, took = fleet.cli("reload", timeout=300)
            summary = "; ".join(text.splitlines())[:160]
            if rc != 0:
                out.misses.append(f"reload ({label}) exited {rc}: {summary}")
            recovery = fleet.wait_ready(t0, expected, timeout)
            steps.append((label, recovery))
            settled = fmt_s(recovery) if recovery is not None else \
                f"never (/status did not show {expected} ready instances within {timeout} s)"
            out.note(f"{label}: `fleet reload` exit {rc} in {took:.1f}s ({summary}), settled after {settled}")
            if recovery is None:
                out.misses.append(f"{label}: /status never showed the change")
            return recovery

        try:
            time.sleep(2)
            # 1. add model b; load on it once it routes
            fleet.config["models"]["b"] = b
            step("add model b", 4)
            load_b = Load(fleet.port, "b", workers=4, mode="stream", name="load-b").start()
            loads.append(load_b)
            time.sleep(3)
            # 2. remove b while its long streams (4 s each) are in flight; no new requests to b from here on
            load_b.stop_starting()
            time.sleep(0.3)
            b_flight = sum((i.get("traffic") or {}).get("inFlight", 0) for i in fleet.instances("b"))
            del fleet.config["models"]["b"]
            step(f"remove b with {b_flight} streams in flight", 2)
            load_b.stop()
            # 3. an unmanaged endpoint joins model a, then leaves it
            endpoint = subprocess.Popen(
                [self.fake_bin, "--port", str(ENDPOINT_PORT), "--alias", "x", "--parallel", "2", "--fake-tokens", "40",
                 "--fake-token-delay", "0.05", "--fake-loading-delay", "0"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.children.append(endpoint)
            if not self.wait_for(lambda: http_get(ENDPOINT_PORT, "/health", 1)[0] == 200, 10):
                raise RuntimeError(f"the endpoint fake-llama-server on port {ENDPOINT_PORT} did not start")
            fleet.config["models"]["a"]["endpoints"] = [f"http://{HOST}:{ENDPOINT_PORT}"]
            step("add endpoint to a", 3)
            time.sleep(3)
            flight = get_json(ENDPOINT_PORT, "/fake/stats")["active"]
            served = get_json(ENDPOINT_PORT, "/fake/stats")["requests"]
            del fleet.config["models"]["a"]["endpoints"]
            step(f"remove the endpoint ({served} served, {flight} in flight on it)", 2, timeout=10)
            self.wait_for(lambda: get_json(ENDPOINT_PORT, "/fake/stats")["active"] == 0, 10)
            before = get_json(ENDPOINT_PORT, "/fake/stats")["requests"]
            time.sleep(2)
            after = get_json(ENDPOINT_PORT, "/fake/stats")["requests"]
            out.note(f"the removed endpoint got {after - before} new requests in the 2 s after")
            if after > before:
                out.misses.append(f"the removed endpoint still got {after - before} new requests")
        finally:
            for load in loads:
                self.finish_load(out, load)
        times = [r for _, r in steps]
        out.recovery = max(times) if times and all(r is not None for r in times) else "never"
        if endpoint is not None:
            endpoint.terminate()
        fleet.down()

    def sigterm(self, out):
        out.server = "fake"
        fleet = self.fleet("sigterm", False, {"m": fake_model(self, 2, 2, tokens=100, delay=0.05)})
        fleet.up()
        requests = [Request(fleet.port, "m", stream=(k % 2 == 0), tag="long") for k in range(6)]
        results, lock = [], threading.Lock()

        def run(request):
            result = request.run()
            with lock:
                results.append(result)

        threads = [threading.Thread(target=run, args=(r,), daemon=True) for r in requests]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 5
        flight = queued = 0
        while time.monotonic() < deadline:
            flight, queued = fleet.in_flight()
            if flight + queued >= len(requests):
                break
            time.sleep(0.05)
        instance_pids = [i["pid"] for i in fleet.instances() if i.get("pid")]
        pid = fleet.controller_pid
        t0 = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        out.note(f"SIGTERM to the controller with {flight} requests in flight and {queued} queued (5 s answers, "
                 f"2 replicas x 2 slots)")
        for thread in threads:
            thread.join(REQUEST_TIMEOUT + 10)
        answered = time.monotonic() - t0
        exited = None
        while time.monotonic() - t0 < 90:
            if not alive(pid):
                exited = time.monotonic() - t0
                break
            time.sleep(0.05)
        orphans_deadline = time.monotonic() + 15
        while time.monotonic() < orphans_deadline and any(alive(p) for p in instance_pids):
            time.sleep(0.1)
        orphans = [p for p in instance_pids if alive(p)]
        refused = completion(fleet.port, "m", timeout=5)
        out.note(f"last answer {fmt_s(answered)} after SIGTERM, controller gone after {fmt_s(exited)}, "
                 + (f"instance processes left running: {orphans}" if orphans else "no instance left running")
                 + f"; a request after that: {refused.kind}")
        if exited is None:
            out.misses.append("controller still running 90 s after SIGTERM")
        if orphans:
            out.misses.append(f"{len(orphans)} instances outlived the controller")
        out.recovery = "-"
        out.results += results
        fleet.down_done = True
        fleet.sweep()

    def clients(self, out):
        out.server = "fake"
        fleet = self.fleet("clients", False, {"m": fake_model(self, 2, 2, tokens=40, delay=0.05)})
        fleet.up()
        port = fleet.port
        background = Load(port, "m", workers=1, max_tokens=5, name="background").start()
        results, lock = [], threading.Lock()

        def spawn(request):
            def run():
                result = request.run()
                with lock:
                    results.append(result)
            thread = threading.Thread(target=run, daemon=True)
            thread.start()
            return thread

        # 1. fill all 4 slots with 2 s streams, queue 3 more, and have those 3 vanish while queued
        holders = [spawn(Request(port, "m", True, tag="holder")) for _ in range(4)]
        self.wait_for(lambda: fleet.in_flight()[0] >= 4, 5)
        queued = [Request(port, "m", True, tag="queued") for _ in range(3)]
        queued_threads = [spawn(r) for r in queued]
        self.wait_for(lambda: fleet.in_flight()[1] >= 3, 3)
        depth = fleet.in_flight()[1]
        for request in queued:
            request.abort()
        time.sleep(0.3)
        depth_after = fleet.in_flight()[1]
        for thread in holders + queued_threads:
            thread.join(REQUEST_TIMEOUT + 5)
        # 2. 4 clients vanish mid-stream (after 3 events) while 2 slow readers (4 KiB receive buffer, 0.3 s per
        #    event) read their whole streams
        vanishers = [spawn(Request(port, "m", True, abandon_after=3, tag="vanish")) for _ in range(4)]
        slow = [spawn(Request(port, "m", True, max_tokens=20, pace=0.3, rcvbuf=4096, tag="slow")) for _ in range(2)]
        for thread in vanishers + slow:
            thread.join(REQUEST_TIMEOUT + 5)
        background.stop()
        t0 = time.monotonic()
        # 3. nothing may stay in flight, and the fleet still serves
        settled = None
        while time.monotonic() - t0 < 30:
            flight, queue = fleet.in_flight()
            if flight == 0 and queue == 0:
                settled = time.monotonic() - t0
                break
            time.sleep(0.1)
        upstream_active = []
        for i in fleet.instances("m"):
            try:
                upstream_active.append(get_json(i["port"], "/fake/stats", 2)["active"])
            except Exception:
                upstream_active.append("?")
        probe = completion(port, "m", stream=False, tag="probe")
        results.append(probe)
        if settled is None:
            flight, queue = fleet.in_flight()
            out.misses.append(f"still {flight} in flight and {queue} queued 30 s after the last client")
        if any(a != 0 for a in upstream_active):
            out.misses.append(f"requests still active in the instances: {upstream_active}")
        out.recovery = (time.monotonic() - t0) if probe.kind == "ok" and settled is not None else ">30 s"
        slow_results = [r for r in results if r.tag == "slow"]
        out.note(f"3 clients vanished while queued (queue depth {depth} → {depth_after} 0.3 s later), 4 mid-stream "
                 f"(not counted); 2 slow readers: {', '.join(r.kind for r in slow_results)}; after: "
                 f"0 in flight after {fmt_s(settled)}, active in the instances {upstream_active}, probe {probe.kind}")
        out.results += [r for r in results if r.kind != "abandoned"] + background.snapshot()
        fleet.down()

    def stall(self, out):
        """A client that stops reading for 60 s in the middle of a 30 MB answer: the controller's RSS may grow by
        less than 1 MB (fleet pauses the transfer; the instance's sends block), and the answer then completes."""
        out.server = "fake"
        tokens, token_bytes, stall_s = 3000, 10000, 60
        model = fake_model(self, 1, 2, tokens=tokens, delay=0)
        model["args"] += ["--fake-token-bytes", str(token_bytes)]
        fleet = self.fleet("stall", False, {"m": model})
        fleet.up()
        pid = fleet.controller_pid
        rss = lambda: int(proc_status_field(pid, "VmRSS").split()[0])  # kB
        samples = {}

        def stalled():
            time.sleep(5)  # every buffer on the way fills
            samples["start"], samples["paused"] = rss(), fleet.status().get("upstream", {}).get("paused")
            time.sleep(stall_s - 5)
            samples["end"], samples["held"] = rss(), fleet.status().get("upstream", {}).get("bufferedBytes")

        samples["before"] = rss()
        request = Request(fleet.port, "m", True, rcvbuf=65536, stall_after=1, on_stall=stalled, tag="stalled")
        result = request.run()
        growth = samples["end"] - samples["start"]
        out.note(f"controller RSS {samples['before']} kB before, {samples['start']} kB 5 s into the stall "
                 f"({samples['paused']} transfer paused), {samples['end']} kB after {stall_s} s ({growth:+d} kB; "
                 f"{samples['held']} bytes held for the stream); then the answer: {result.kind}, {request.lines} events")
        if growth >= 1024:
            out.misses.append(f"RSS grew by {growth} kB during a {stall_s} s stall (goal: under 1 MB)")
        if request.lines != tokens + 2:
            out.misses.append(f"{request.lines} events, not {tokens + 2} (every token, the last chunk, [DONE])")
        out.recovery = "-"
        out.results.append(result)
        fleet.down()

    def streams1000(self, out):
        """1,000 concurrent streams (100 chunks, 100 ms apart, so that every one is open at once) through one
        controller, twice: no errors, peak RSS under 100 MB, nothing in flight after each round, and no more
        descriptors after either than before plus curl's pool of idle upstream connections (at most 1,024, as
        many as ran at once)."""
        out.server = "fake"
        count = 1000
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < count + 200:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4 * count), hard))
        fleet = self.fleet("streams1000", False, {"m": fake_model(self, 2, count // 2, tokens=100, delay=0.1,
                                                                   extra={"queue": {"maxSize": count}})})
        fleet.up()
        pid = fleet.controller_pid
        kb = lambda field: int(proc_status_field(pid, field).split()[0])
        rss_before, fds_before = kb("VmRSS"), fd_count(pid)
        rounds = []
        for _ in range(2):
            results, lock = [], threading.Lock()
            started = threading.Barrier(count + 1)

            def run():
                started.wait()
                result = Request(fleet.port, "m", True, max_tokens=100, tag="stream").run()
                with lock:
                    results.append(result)

            threads = [threading.Thread(target=run, daemon=True) for _ in range(count)]
            for thread in threads:
                thread.start()
            t0 = time.monotonic()
            started.wait()
            peak_flight = 0
            while any(t.is_alive() for t in threads) and time.monotonic() - t0 < REQUEST_TIMEOUT + 30:
                try:
                    peak_flight = max(peak_flight, fleet.in_flight()[0])
                except Exception:
                    pass
                time.sleep(0.3)
            took = time.monotonic() - t0
            settled = self.wait_for(lambda: fleet.in_flight() == (0, 0), 30)
            time.sleep(1)
            rounds.append((took, peak_flight, settled, fd_count(pid)))
            out.results += results
            ok = sum(1 for r in results if r.kind == "ok")
            out.note(f"{count} streams in {took:.1f} s, {ok} whole, {peak_flight} in flight at the most; "
                     f"{rounds[-1][3]} fds after (nothing in flight: {settled})")
        peak = kb("VmHWM")
        out.note(f"controller RSS {rss_before} kB before, peak {peak} kB ({(peak - rss_before) / count:.1f} kB per "
                 f"stream); fds {fds_before} before, {rounds[0][3]} after the first thousand, {rounds[1][3]} after the second")
        # A replica that serves 500 streams is busy, not dead: its probes may time out under the storm of new
        # connections, but it must never be killed for that (2026-12-07: one run cut 515 streams that way).
        restarted = [f"{i['id']} ({i.get('lastError') or 'no error recorded'})" for i in fleet.instances() if i.get("restarts")]
        if restarted:
            out.misses.append(f"instances restarted during the streams: {', '.join(restarted)}")
        if peak >= 100 * 1024:
            out.misses.append(f"peak RSS {peak} kB (goal: under 100 MB)")
        # curl keeps up to CURLMOPT_MAXCONNECTS (1024) idle upstream connections for reuse, as many as the streams
        # that ran at once; a descriptor left per stream would pass that bound by the second thousand.
        bound = fds_before + 1024 + 16
        if max(r[3] for r in rounds) > bound:
            out.misses.append(f"{max(r[3] for r in rounds)} descriptors after the streams, beyond {bound} (before + curl's idle pool)")
        if not all(r[2] for r in rounds):
            out.misses.append("requests still in flight 30 s after the last stream")
        out.recovery = "-"
        fleet.down()

    def idle20k(self, out):
        out.server = "fake"
        total = 20000
        fleet = self.fleet("idle20k", False, {"m": fake_model(self, 2, 2, tokens=8, delay=0.01)})
        fleet.up()
        port, pid = fleet.port, fleet.controller_pid
        out.note(f"controller: open files limit {open_files_limit(pid)}, {fd_count(pid)} fds before")
        holders = []
        shares = [total // 3 + (1 if k < total % 3 else 0) for k in range(3)]
        t0 = time.monotonic()
        for share in shares:
            child = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--hold", str(share), "--port",
                                      str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            self.children.append(child)
            holders.append(child)
        reports = [json.loads(child.stdout.readline() or "{}") for child in holders]
        connected = sum(r.get("connected", 0) for r in reports)
        errors = {}
        for r in reports:
            for k, v in r.get("errors", {}).items():
                errors[k] = errors.get(k, 0) + v
        def still_open():
            count = 0
            for child in holders:
                try:
                    child.stdin.write("check\n")
                    child.stdin.flush()
                    count += json.loads(child.stdout.readline() or "{}").get("open", 0)
                except (OSError, ValueError):
                    pass
            return count

        out.note(f"{connected}/{total} idle connections opened in {time.monotonic() - t0:.1f}s"
                 + (f" (connect errors: {errors})" if errors else "") + f", {still_open()} of them not closed by "
                 f"the server as the client sees it; controller then holds {fd_count(pid)} fds")
        if connected < total * 0.95:
            out.misses.append(f"only {connected} of {total} idle connections could be opened")
        load = Load(port, "m", workers=2, name="load").start()
        time.sleep(1)
        probes = {"/health": [], "/status": [], "completion": []}
        queues = []
        for round_ in range(3):  # three rounds, 0.5 s apart; each probe must answer within 1 s
            waiting, limit = accept_queue(port)
            queues.append(f"{waiting if waiting is not None else '?'}/{limit if limit is not None else '?'}")
            for label, call in (("/health", lambda: timed_get(port, "/health", 10)),
                                ("/status", lambda: timed_get(port, "/status", 10)),
                                ("completion", lambda: completion(port, "m", stream=False, timeout=10, tag="probe"))):
                start = time.monotonic()
                try:
                    answer = call()
                    took = time.monotonic() - start
                    if isinstance(answer, Result):
                        out.results.append(answer)
                        ok = answer.kind == "ok"
                        what = "" if ok else f" ({answer.kind}: {answer.detail})"
                    else:
                        ok = answer[0] == 200
                        what = "" if ok else f" (HTTP {answer[0]})"
                        if took > 1.0 or answer[1] > 0.5:
                            what += f" (connected after {fmt_s(answer[1])})"
                except Exception as e:
                    took, ok, what = time.monotonic() - start, False, f" ({type(e).__name__}: {e})"
                probes[label].append(fmt_s(took) + what)
                if not ok or took > 1.0:
                    out.misses.append(f"{label} took {fmt_s(took)}{what} with the idle connections open")
            time.sleep(0.5)
        out.note("then (3 rounds; the listen socket's accept queue before each: " + ", ".join(queues) + ") "
                 + "; ".join(f"{label} {', '.join(times)}" for label, times in probes.items()))
        time.sleep(3)
        self.finish_load(out, load)
        out.note(f"{still_open()} of them still open at the end (the rest closed by the server); controller "
                 f"{fd_count(pid)} fds, {int(proc_status_field(pid, 'VmRSS').split()[0]) // 1024} MiB RSS")
        for child in holders:
            try:
                child.stdin.write("close\n")
                child.stdin.flush()
                child.stdin.close()
            except OSError:
                pass
        for child in holders:
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
        t1 = time.monotonic()
        back = None
        while time.monotonic() - t1 < 30:
            try:
                if http_get(port, "/health", 2)[0] == 200:
                    back = time.monotonic() - t1
                    break
            except (OSError, http.client.HTTPException):
                time.sleep(0.2)
        time.sleep(1)
        out.note(f"after they closed: /health after {fmt_s(back)}, controller {fd_count(pid)} fds")
        out.recovery = "-"
        fleet.down()

    def malformed(self, out):
        out.server = "fake"
        fleet = self.fleet("malformed", False, {"m": fake_model(self, 2, 2, tokens=10, delay=0.02)},
                           extra={"gateway": {"maxBodySize": "64KiB"}})
        fleet.up()
        port = fleet.port
        host = f"Host: {HOST}:{port}\r\n".encode()
        load = Load(port, "m", workers=2, name="load").start()
        slow_results = []
        slow_threads = [threading.Thread(target=lambda: slow_results.append(slowloris(port, 30)), daemon=True)
                        for _ in range(5)]
        for thread in slow_threads:
            thread.start()
        chat = b"POST /v1/chat/completions HTTP/1.1\r\n" + host + b"Content-Type: application/json\r\n"

        def with_length(body):
            return b"Content-Length: %d\r\n\r\n" % len(body) + body

        big = b'{"model":"m","messages":[{"role":"user","content":"' + b"a" * (100 * 1024) + b'"}]}'
        chunked_big = b"".join(b"%x\r\n" % len(big[k:k + 4096]) + big[k:k + 4096] + b"\r\n"
                               for k in range(0, len(big), 4096)) + b"0\r\n\r\n"
        attacks = [
            ("garbage bytes", [bytes([0x16, 0x03, 0x01, 0x02, 0x00]) + os.urandom(300) + b"\r\n\r\n"], "any"),
            ("invalid JSON", [chat + with_length(b'{"model": "m", "messages": [')], 400),
            ("JSON not an object", [chat + with_length(b"[1,2]")], 400),
            ("100 KiB body (Content-Length)", [chat + b"Content-Length: %d\r\n\r\n" % len(big), big], 413),
            ("100 KiB body (chunked)", [chat + b"Transfer-Encoding: chunked\r\n\r\n", chunked_big], 413),
            ("Content-Length: 99999999999 + 2 bytes", [chat + b"Content-Length: 99999999999\r\n\r\n{}"], 413),
            ("one 100 KB header", [b"GET /health HTTP/1.1\r\n" + host + b"X-Big: " + b"a" * (100 * 1024) + b"\r\n\r\n"],
             "any"),
            ("100 KB of headers (2000 lines)",
             [b"GET /health HTTP/1.1\r\n" + host + b"".join(b"X-H%d: %s\r\n" % (k, b"a" * 40) for k in range(2000))
              + b"\r\n"], "any"),
        ]
        t_attacks = time.monotonic()
        answers = []
        for label, parts, want in attacks:
            answer, took = raw_exchange(port, parts, timeout=10)
            verdict = None
            if answer == "hang":
                verdict = "no answer in 10 s"
            elif want != "any" and answer != f"HTTP {want}":
                verdict = f"wanted HTTP {want}"
            elif want == 413 and took > 1.0:
                verdict = "not at once"
            answers.append(f"{label} → {answer} in {fmt_s(took)}" + (f" [{verdict}]" if verdict else ""))
            if verdict:
                out.misses.append(f"{label}: {answer} in {fmt_s(took)} ({verdict})")
        out.note("; ".join(answers))
        for thread in slow_threads:
            thread.join(60)
        still_open = [s for s in slow_results if s[0] == "open"]
        out.note("5 slowloris connections (a POST at 1 byte/s): "
                 + ", ".join(sorted({f"{a} after {fmt_s(t)}" for a, t in slow_results})))
        if still_open:
            out.misses.append(f"{len(still_open)} slowloris connections were still open after 30 s")
        t1 = time.monotonic()
        probe = completion(port, "m", stream=True, timeout=10, tag="probe")
        out.results.append(probe)
        out.recovery = (time.monotonic() - t1) if probe.kind == "ok" else ">10 s"
        self.finish_load(out, load)
        out.note(f"attacks ran {time.monotonic() - t_attacks:.0f}s beside 2 workers of normal load; a probe after: "
                 f"{probe.kind}")
        fleet.down()

    # ----------------------------------------------------------------------------------------------------------
    # The soak

    def soak(self, seconds, interval=30.0):
        real = not self.fake_only
        model = real_model(self, 2, 2) if real else fake_model(self, 2, 2, tokens=32, delay=0.03)
        fleet = Fleet(self, "soak", SOAK_LISTEN, SOAK_PORTS, self.llama_server if real else self.fake_bin, {"m": model})
        fleet.up()
        pid = fleet.controller_pid
        load = Load(fleet.port, "m", workers=2, max_tokens=32 if real else None).start()
        samples = []
        t0 = time.monotonic()
        try:
            while True:
                elapsed = time.monotonic() - t0
                counts, _ = tally(load.snapshot())
                rss = proc_status_field(pid, "VmRSS")
                threads = proc_status_field(pid, "Threads")
                sample = {"t": elapsed, "rss_kib": int(rss.split()[0]) if rss else None, "fds": fd_count(pid),
                          "threads": int(threads) if threads else None, **counts}
                samples.append(sample)
                log(f"soak {elapsed:6.0f}s: RSS {sample['rss_kib']} KiB, fds {sample['fds']}, threads "
                    f"{sample['threads']}, ok {counts['ok']}, failed {counts['failed']}, truncated "
                    f"{counts['truncated']}, lost {counts['lost']}")
                if elapsed >= seconds - 0.5 or not alive(pid):
                    break
                time.sleep(max(0.0, min(interval * len(samples), seconds) - (time.monotonic() - t0)))
        finally:
            load.stop()
            final, details = tally(load.snapshot())
            fleet.down()
        lines = [f"soak: {fmt_duration(seconds)} on the {'real' if real else 'fake'} server, 2 replicas x 2 slots, "
                 f"2 workers (streamed and non-streamed in turn{', max_tokens 32' if real else ''}); the controller "
                 f"sampled every {interval:.0f} s", "",
                 "| time | RSS (MiB) | fds | threads | ok | failed | truncated | lost |",
                 "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for s in samples:
            rss = f"{s['rss_kib'] / 1024:.1f}" if s["rss_kib"] else "?"
            lines.append(f"| {fmt_duration(s['t'])} | {rss} | {s['fds']} | {s['threads']} | {s['ok']} | "
                         f"{s['failed']} | {s['truncated']} | {s['lost']} |")
        lines.append("")
        base = next((s for s in samples if s["t"] >= 119), None) if seconds >= 240 else None
        if base is None and len(samples) >= 2:
            base = samples[1]
        last = samples[-1]
        totals = (f"requests: {final['ok']} ok, {final['failed']} failed, {final['truncated']} truncated, "
                  f"{final['lost']} lost, {final['refused']} refused")
        if base and last is not base and base["rss_kib"] and last["rss_kib"] and base["fds"]:
            def pct(a, b):
                return f"{(b - a) / a * 100:+.1f}%"
            lines.append(f"from {fmt_duration(base['t'])} (after warm-up) to {fmt_duration(last['t'])}: RSS "
                         f"{base['rss_kib'] / 1024:.1f} → {last['rss_kib'] / 1024:.1f} MiB "
                         f"({pct(base['rss_kib'], last['rss_kib'])}), fds {base['fds']} → {last['fds']} "
                         f"({pct(base['fds'], last['fds'])}), threads {base['threads']} → {last['threads']}; {totals}")
        else:
            lines.append(f"too short to compare samples; {totals}")
        for (kind, detail), n in sorted(details.items(), key=lambda kv: -kv[1])[:5]:
            lines.append(f"- {n} {kind}: {detail}")
        print("\n".join(lines), flush=True)
        return 1 if final["lost"] or final["failed"] or final["truncated"] else 0


def fmt_duration(seconds):
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s" if seconds % 60 else f"{seconds // 60}m"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


def parse_duration(text):
    text = text.strip().lower()
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for unit in ("ms", "s", "m", "h"):
        if text.endswith(unit):
            return float(text[:-len(unit)]) * units[unit]
    return float(text)


# --------------------------------------------------------------------------------------------------------------
# Raw-socket attacks


def raw_exchange(port, parts, timeout=10.0):
    """Sends `parts` on a fresh connection and reads the answer's status line: ("HTTP 413", seconds),
    ("closed", s) when the server closed without a status line, ("reset", s), or ("hang", s) when nothing came
    within `timeout`."""
    sock = socket.create_connection((HOST, port), timeout=5)
    t0 = time.monotonic()
    try:
        sent_error = None
        try:
            for part in parts:
                sock.sendall(part)
        except OSError as e:
            sent_error = e
        sock.settimeout(timeout)
        data = b""
        try:
            while b"\r\n" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            return "hang", time.monotonic() - t0
        except ConnectionResetError:
            return "reset" + (" while sending" if sent_error else ""), time.monotonic() - t0
        took = time.monotonic() - t0
        if data.startswith(b"HTTP/"):
            try:
                return f"HTTP {int(data.split()[1])}", took
            except (IndexError, ValueError):
                return "a malformed status line", took
        if not data:
            return "closed" + (" while sending" if sent_error else ""), took
        return f"a non-HTTP answer {data[:30]!r}", took
    finally:
        sock.close()


def slowloris(port, limit):
    """A POST sent one byte per second for up to `limit` seconds: ("closed"/"HTTP nnn"/"reset", when) if the
    server ended it, ("open", limit) if it was still waiting."""
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": PROMPT}]}).encode()
    request = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n" % (HOST.encode(), port, len(body))) + body
    sock = socket.create_connection((HOST, port), timeout=5)
    t0 = time.monotonic()
    try:
        sock.setblocking(False)
        for k in range(len(request)):
            if time.monotonic() - t0 >= limit:
                return "open", time.monotonic() - t0
            try:
                sock.send(request[k:k + 1])
            except (BrokenPipeError, ConnectionResetError):
                return "reset", time.monotonic() - t0
            except BlockingIOError:
                pass
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                try:
                    data = sock.recv(4096)
                    if not data:
                        return "closed", time.monotonic() - t0
                    if data.startswith(b"HTTP/"):
                        return f"HTTP {data.split()[1].decode()}", time.monotonic() - t0
                except BlockingIOError:
                    time.sleep(0.05)
                except ConnectionResetError:
                    return "reset", time.monotonic() - t0
        return "sent in full", time.monotonic() - t0
    finally:
        sock.close()


# --------------------------------------------------------------------------------------------------------------
# --hold: a child process holding idle connections for idle20k


def hold_main(count, port):
    """Opens `count` idle connections to 127.0.0.1:port (non-blocking, 500 at a time), prints a JSON line, then
    answers `check` (how many the server has not closed) and `close` on stdin."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sockets, errors = [], {}
    failed = 0
    selector = selectors.DefaultSelector()
    t0 = time.monotonic()

    def fail(sock, why):
        nonlocal failed
        failed += 1
        errors[why] = errors.get(why, 0) + 1
        if sock is not None:
            sock.close()

    pending = {}

    def settle(until, below):
        """Collects finished connects until fewer than `below` are pending or `until` passes."""
        while len(pending) >= below and time.monotonic() < until:
            for key, _ in selector.select(timeout=0.2):
                sock = key.fileobj
                selector.unregister(sock)
                del pending[sock.fileno()]
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err == 0:
                    sockets.append(sock)
                else:
                    fail(sock, errno.errorcode.get(err, str(err)))

    started = 0
    while started < count:
        for _ in range(min(500, count - started)):
            started += 1
            try:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            except OSError as e:
                fail(None, errno.errorcode.get(e.errno, str(e.errno)))
                continue
            sock.setblocking(False)
            rc = sock.connect_ex((HOST, port))
            if rc == 0:
                sockets.append(sock)
            elif rc in (errno.EINPROGRESS, errno.EAGAIN, errno.EALREADY):
                selector.register(sock, selectors.EVENT_WRITE)
                pending[sock.fileno()] = sock
            else:
                fail(sock, errno.errorcode.get(rc, str(rc)))
        # at most ~1000 handshakes under way at once: a flood of SYNs would only measure the kernel's backlog
        settle(time.monotonic() + 5, 1000)
    settle(time.monotonic() + 20, 1)  # the kernel retries a dropped SYN after 1, 3, 7, 15 s
    for sock in list(pending.values()):
        selector.unregister(sock)
        fail(sock, "not connected within 20 s")
    print(json.dumps({"connected": len(sockets), "failed": failed, "errors": errors,
                      "seconds": round(time.monotonic() - t0, 2)}), flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "check":
            by_fd = {s.fileno(): s for s in sockets}
            poller = select.poll()
            for fd in by_fd:
                poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
            closed = 0
            for fd, event in poller.poll(0):
                if event & (select.POLLHUP | select.POLLERR):
                    closed += 1
                    continue
                try:
                    if by_fd[fd].recv(1, socket.MSG_PEEK) == b"":
                        closed += 1
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    closed += 1
            print(json.dumps({"open": len(sockets) - closed, "closed": closed}), flush=True)
        elif command == "close":
            break
    for sock in sockets:
        try:  # RST instead of FIN: no TIME_WAIT, so the ephemeral ports come back at once
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        sock.close()
    return 0


# --------------------------------------------------------------------------------------------------------------
# Report


def report(outcomes):
    rows = ["| fault | started | succeeded | failed | truncated-with-error | lost | recovery |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    notes, failing = [], []
    for out in outcomes:
        counts, details = tally(out.results)
        recovery = "error" if out.error else out.recovery if isinstance(out.recovery, str) else fmt_s(out.recovery)
        rows.append(f"| {out.name} | {counts['started']} | {counts['ok']} | {counts['failed']} | "
                    f"{counts['truncated']} | {counts['lost']} | {recovery} |")
        verdicts = []
        if counts["lost"]:
            verdicts.append(f"{counts['lost']} lost")
        if out.name in ("hotswap", "reload", "sigterm") and counts["failed"]:
            verdicts.append(f"{counts['failed']} failed")
        if out.error:
            verdicts.append("the fault did not run to its end: " + out.error)
        verdicts += out.misses
        if verdicts:
            failing.append(out.name)
        text = f"- **{out.name}** ({out.server or '?'} server): " + "; ".join(out.notes)
        if counts["refused"]:
            text += f"; {counts['refused']} refused (connection refused before sending: not started)"
        for (kind, detail), n in sorted(details.items(), key=lambda kv: -kv[1])[:4]:
            text += f"; {n} {kind}: {detail}"
        text += ". " + ("**Goal missed**: " + "; ".join(verdicts) + "." if verdicts else "Goals met.")
        notes.append(text)
    print("\n".join(rows))
    print()
    print("\n".join(notes))
    print()
    print("all goals met" if not failing else f"goals missed: {', '.join(failing)}")
    return 1 if failing else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work")
    parser.add_argument("--fleet")
    parser.add_argument("--fake")
    parser.add_argument("--llama-server")
    parser.add_argument("--model")
    parser.add_argument("--only", default="")
    parser.add_argument("--fake-only", action="store_true")
    parser.add_argument("--soak")
    parser.add_argument("--hold", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hold is not None:
        return hold_main(args.hold, args.port)
    if not (args.work and args.fleet and args.fake):
        parser.error("--work, --fleet and --fake are required")
    names = [n.strip() for n in args.only.split(",") if n.strip()] or FAULTS
    unknown = [n for n in names if n not in FAULTS]
    if unknown:
        print(f"unknown fault(s): {', '.join(unknown)}; known: {', '.join(FAULTS)}", file=sys.stderr)
        return 2
    soak_seconds = None
    if args.soak:
        try:
            soak_seconds = parse_duration(args.soak)
        except ValueError:
            print(f"--soak {args.soak}: not a duration (90s, 30m, 2h)", file=sys.stderr)
            return 2

    suite = Suite(args)

    def terminate(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)
    try:
        if soak_seconds is not None:
            return suite.soak(soak_seconds)
        outcomes = []
        started = time.monotonic()
        for name in names:
            out = Outcome(name)
            log(f"=== {name}")
            t0 = time.monotonic()
            try:
                getattr(suite, name)(out)
            except KeyboardInterrupt:
                raise
            except Exception as e:
                out.error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                log(f"{name}: ERROR\n{traceback.format_exc()}")
            finally:
                for load in Load.everyone:
                    load.stop_starting()
                for fleet in suite.fleets:
                    if fleet.name == name:
                        fleet.down()
            log(f"{name}: done in {time.monotonic() - t0:.0f}s")
            outcomes.append(out)
        server = ("kill9 and hotswap on llama-server with " + os.path.basename(suite.model) + ", the rest on "
                  "fake-llama-server") if not suite.fake_only else "every fault on fake-llama-server (--fake-only)"
        print()
        print(f"fleet fault suite: {len(outcomes)} faults in {time.monotonic() - started:.0f}s; {server}. Requests: "
              f"/v1/chat/completions, streamed and not, each counted once; recovery: from the fault until every "
              f"instance is ready again (or a probe completion answers).")
        print()
        return report(outcomes)
    finally:
        suite.cleanup()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as e:
        log(f"interrupted ({e}); cleaned up")
        sys.exit(130)
