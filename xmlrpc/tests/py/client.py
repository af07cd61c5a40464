"""Python standard-library XML-RPC client driving our server. Exits 1 on the first mismatch.

usage: client.py URL URL_WITH_AUTH
"""
import datetime
import sys
import xmlrpc.client
from xmlrpc.client import Binary, DateTime, Fault, MultiCall, ServerProxy, Transport

url, auth_url = sys.argv[1], sys.argv[2]
checks = 0


def check(name, got, want):
    global checks
    if got != want:
        print(f"FAIL {name}: got {got!r}, want {want!r}", flush=True)
        sys.exit(1)
    checks += 1


p = ServerProxy(url, allow_none=True)
# Every type, from Python to us and back.
check("int", p.echo(42, -2147483648, 2147483647), [42, -2147483648, 2147483647])
check("bool", p.echo(True, False), [True, False])
check("str", p.echo("héllo wörld ✓ <&>", ""), ["héllo wörld ✓ <&>", ""])
check("double", p.echo(1.5, -0.25, 1e300), [1.5, -0.25, 1e300])
check("none", p.echo(None), [None])
check("binary", p.echo(Binary(b"\x00\x01\xfe\xff" * 100)), [Binary(b"\x00\x01\xfe\xff" * 100)])
check("struct", p.echo({"a": 1, "b": [1, "x", {"c": None}]}), [{"a": 1, "b": [1, "x", {"c": None}]}])
check("array", p.echo([]), [[]])
dt = DateTime("19980717T14:08:55")
check("datetime spec form", p.echo(dt), [dt])
check("datetime object", p.echo(datetime.datetime(2026, 11, 21, 23, 8, 54)), [DateTime("20261121T23:08:54")])
# What our server sends that Python must read: i8, dashed and zoned dateTime, nil, big structs.
check("i8 from us", p.big(), [9223372036854775807, -9223372036854775808, 4294967296])
check("typed add", p.add(2, 3), 5)
check("typed greet", p.greet({"name": "Zoë", "times": 2}), "Hello Zoë! Hello Zoë!")
check("dashed datetime", p.dates()[0], DateTime("19980717T14:08:55"))
# Faults.
try:
    p.fail()
    check("fault raised", False, True)
except Fault as f:
    check("fault code", (f.faultCode, f.faultString), (4242, "boom: ünïcode"))
try:
    p.no_such_method()
except Fault as f:
    check("unknown method", f.faultCode, -32601)
try:
    p.add("x", 1)
except Fault as f:
    check("bad params", f.faultCode, -32602)
# Multicall.
mc = MultiCall(p)
mc.add(1, 2)
mc.echo("x")
mc.fail()
results = mc()
check("multicall 1", results[0], 3)
check("multicall 2", results[1], ["x"])
try:
    results[2]
except Fault as f:
    check("multicall fault", f.faultCode, 4242)
# Introspection.
methods = p.system.listMethods()
check("listMethods", all(m in methods for m in ["add", "echo", "system.multicall", "system.methodHelp"]), True)
check("methodHelp", p.system.methodHelp("add"), "Adds two integers.")
check("methodSignature", p.system.methodSignature("add"), [["int", "int", "int"]])
# Without allow_none Python refuses to send None itself.
q = ServerProxy(url)
try:
    q.echo(None)
    check("no allow_none", False, True)
except TypeError:
    checks += 1
# Large integers: Python cannot send them (its marshaller refuses), which we also check.
try:
    p.echo(2**40)
    check("python refuses big int", False, True)
except OverflowError:
    checks += 1
# gzip both ways: a request body gzipped by Python, a large response gzipped by us.
class GzipTransport(Transport):
    encode_threshold = 0
g = ServerProxy(url, transport=GzipTransport(), allow_none=True)
big = ["x" * 1000] * 20
check("gzip", g.echo(big), [big])
# Authentication.
a = ServerProxy(auth_url)
check("auth ok", a.add(1, 1), 2)
bad = ServerProxy(auth_url.replace(":secret@", ":wrong@"))
try:
    bad.add(1, 1)
    check("auth refused", False, True)
except xmlrpc.client.ProtocolError as e:
    check("auth refused", e.errcode, 401)
print(f"ok {checks} checks", flush=True)
