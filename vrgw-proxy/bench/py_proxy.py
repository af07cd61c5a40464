"""The approach of the system we implement, for comparison: a Python standard-library XML-RPC
server offering the proxy's methods (get, set, names, add_object, delete_object, health) over
the same parameters, rendering a dnsmasq configuration on each set.

usage: py_proxy.py PARAMS_JSON RUN_DIR   (prints the port, serves on 127.0.0.1 until killed)
"""
import json
import os
import sys
from xmlrpc.server import SimpleXMLRPCServer, SimpleXMLRPCRequestHandler


class Quiet(SimpleXMLRPCRequestHandler):
    def log_message(self, *args):
        pass


params = {p["name"]: p for p in json.load(open(sys.argv[1]))}
run_dir = sys.argv[2]
key = [""]


def get(paths):
    out = []
    for p in paths:
        if p.endswith("."):
            out.extend(v for n, v in params.items() if n.startswith(p))
        elif p in params:
            out.append(params[p])
        else:
            raise ValueError(f"9005 {p}")
    return out


def set_(values, parameter_key=""):
    for v in values:
        if v["name"] not in params:
            raise ValueError(f"9005 {v['name']}")
    for v in values:
        params[v["name"]]["value"] = str(v["value"])
    pool = "Device.DHCPv4.Server.Pool.1."
    conf = "dhcp-range={},{}\n".format(params[pool + "MinAddress"]["value"], params[pool + "MaxAddress"]["value"])
    tmp = os.path.join(run_dir, "dnsmasq.conf.tmp")
    with open(tmp, "w") as f:
        f.write(conf)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, os.path.join(run_dir, "dnsmasq.conf"))
    key[0] = parameter_key
    return 0


def names(path, next_level=False):
    return [{"name": n, "writable": True} for n in params if n.startswith(path)]


def add_object(path, parameter_key=""):
    return 1


def delete_object(path, parameter_key=""):
    return 0


def health():
    return {"status": "ok", "parameter_key": key[0]}


server = SimpleXMLRPCServer(("127.0.0.1", 0), requestHandler=Quiet, logRequests=False)
server.register_function(get)
server.register_function(set_, "set")
server.register_function(names)
server.register_function(add_object)
server.register_function(delete_object)
server.register_function(health)
print(server.server_address[1], flush=True)
server.serve_forever()
