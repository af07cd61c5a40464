"""The ACS's northbound API, as an OSS uses it (standard library only)."""

import json
import time
import urllib.error
import urllib.parse
import urllib.request

from . import sh

VIRT = "Device.X_VRGW-ORG_Virtualization."


class Nbi:
    def __init__(self, base, token, device):
        self.base = base.rstrip("/")
        self.token = token
        self.device = device

    def call(self, method, path, body=None, timeout=60):
        req = urllib.request.Request(self.base + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": "Bearer " + self.token})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw or b"null")
            except ValueError:
                return e.code, raw.decode(errors="replace")

    def put_file(self, name, data, file_type, oui="", product_class=""):
        """Stores a file in the ACS (PUT /files/NAME) as an OSS does; its HTTP status."""
        headers = {"Authorization": "Bearer " + self.token, "fileType": file_type, "oui": oui,
                   "productClass": product_class}
        req = urllib.request.Request(self.base + "/files/" + urllib.parse.quote(name), method="PUT", data=data,
                                     headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    def device_known(self):
        try:
            s, v = self.call("GET", "/devices?query=" + urllib.parse.quote(json.dumps({"_id": self.device})),
                             timeout=5)
        except OSError:
            return False
        return s == 200 and bool(v)

    def task(self, body, timeout_ms=60000):
        """Runs a task on the host agent now (connection request); its result, or Failed with the
        fault. When the agent did not answer the connection request in time (202: queued), the
        connection request is sent again until the task has run or `timeout_ms` has passed."""
        path = "/devices/%s/tasks?connection_request&timeout=%d" % (urllib.parse.quote(self.device), timeout_ms)
        end = time.monotonic() + timeout_ms / 1000
        s, v = self.call("POST", path, body, timeout=timeout_ms / 1000 + 30)
        next_wake = time.monotonic() + 10
        while s == 202 and isinstance(v, dict) and v.get("status") in ("pending", "sent") and time.monotonic() < end:
            time.sleep(1)
            state = self.task_state(v.get("_id"))
            if state is None or state.get("status") not in ("pending", "sent"):
                v = state if state is not None else v
                s = 200
                break
            if state.get("status") == "sent":
                # Running in a session now: wait for it, no need to wake the agent.
                v = state
                continue
            if time.monotonic() < next_wake:
                continue
            next_wake = time.monotonic() + 10
            # Wake the agent again (every 10 s) with a cheap request; the queued task runs first.
            self.call("POST", "/devices/%s/tasks?connection_request&timeout=5000" % urllib.parse.quote(self.device),
                      {"name": "getParameterValues", "parameterNames": ["Device.DeviceInfo.UpTime"]}, timeout=40)
        if s != 200 or not isinstance(v, dict) or v.get("status") != "done":
            raise sh.Failed("NBI task %s: HTTP %s %s" % (body.get("name"), s, json.dumps(v)[:600]))
        return v.get("result") or {}

    def task_state(self, task_id):
        """The task as the NBI shows it; a still-"pending" stand-in when the NBI is too busy to say."""
        try:
            # A query naming `status` sees done tasks too (GET /tasks lists only those not done).
            query = {"device": self.device, "_id": task_id, "status": {"$exists": True}}
            s, v = self.call("GET", "/tasks?query=" + urllib.parse.quote(json.dumps(query)),
                             timeout=60)
        except OSError:
            return {"_id": task_id, "status": "pending"}
        if s == 200 and isinstance(v, list):
            return next((t for t in v if t.get("_id") == task_id), None)
        return None

    def get(self, names, timeout_ms=60000):
        """Live values: {name: value}."""
        r = self.task({"name": "getParameterValues", "parameterNames": list(names)}, timeout_ms)
        return {p[0]: p[1] for p in r.get("parameters", [])}

    def set(self, values, timeout_ms=60000):
        """values: [(name, value[, xsd type])]."""
        return self.task({"name": "setParameterValues", "parameterValues": [list(v) for v in values]}, timeout_ms)

    def add(self, table, values, timeout_ms=300000):
        r = self.task({"name": "addObject", "objectName": table, "parameterValues": [list(v) for v in values]},
                      timeout_ms)
        return int(r["instance"])

    def delete(self, obj, timeout_ms=300000):
        return self.task({"name": "deleteObject", "objectName": obj}, timeout_ms)


def rows(values, table):
    """{n: {param: value}} of the rows of `table` (direct parameters only) in a GPV result."""
    out = {}
    for name, value in values.items():
        if not name.startswith(table):
            continue
        rest = name[len(table):].split(".")
        if len(rest) == 2 and rest[0].isdigit():
            out.setdefault(int(rest[0]), {})[rest[1]] = value
    return out


def wait_device(nbi, timeout=60):
    sh.wait_for("the hypervisor agent registering with the ACS", nbi.device_known, timeout)
    time.sleep(0.2)
