"""Python standard-library XML-RPC server for the interoperability tests and the benchmark.

usage: server.py allow_none|no_none   (prints the port, then serves until killed)
"""
import sys
from xmlrpc.server import SimpleXMLRPCServer, SimpleXMLRPCRequestHandler
import xmlrpc.client


class Quiet(SimpleXMLRPCRequestHandler):
    def log_message(self, *args):
        pass


def echo(*args):
    return list(args)


def fail(code, message):
    raise xmlrpc.client.Fault(code, message)


def types(*args):
    return [type(a).__name__ for a in args]


def struct20(s):
    return s


allow_none = sys.argv[1] == "allow_none"
server = SimpleXMLRPCServer(("127.0.0.1", 0), requestHandler=Quiet, allow_none=allow_none,
                            logRequests=False, use_builtin_types=False)
server.register_function(echo)
server.register_function(fail)
server.register_function(types)
server.register_function(struct20)
server.register_multicall_functions()
server.register_introspection_functions()
print(server.server_address[1], flush=True)
server.serve_forever()
