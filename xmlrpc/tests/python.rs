//! Interoperability with Python's standard library (`xmlrpc.client`, `xmlrpc.server`) in both
//! directions: every type, faults, multicall, introspection, large and negative integers,
//! non-ASCII text, dateTime forms, nil with and without allow_none, gzip, Basic authentication,
//! and Python's HTTP/1.0 server that closes the connection after each response.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use xmlrpc::{Client, DateTime, Error, Fault, Server, Value};

const PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py");

struct PyServer(Child, u16);

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python_server(mode: &str) -> PyServer {
    let mut child = Command::new("python3")
        .arg(format!("{PY}/server.py"))
        .arg(mode)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 is needed for the interoperability tests");
    let mut line = String::new();
    let out = child.stdout.take().expect("stdout");
    BufReader::new(out).read_line(&mut line).expect("port line");
    let port = line.trim().parse().unwrap_or_else(|_| panic!("python server printed {line:?}"));
    PyServer(child, port)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

#[test]
fn our_client_against_python_server() {
    let py = python_server("allow_none");
    let url = format!("http://127.0.0.1:{}/RPC2", py.1);
    rt().block_on(async {
        let c = Client::new(&url).expect("client");
        let dt = DateTime::parse("19980717T14:08:55").expect("dt");
        let sent = vec![
            Value::Int(-2_147_483_648),
            Value::Int(2_147_483_647),
            Value::I8(-5),
            Value::Bool(true),
            Value::String("héllo ✓ <&> \"q\"".into()),
            Value::String(String::new()),
            Value::Double(-0.1),
            Value::Double(1e300),
            Value::DateTime(dt),
            Value::Base64(vec![0, 1, 254, 255]),
            Value::structure([("a", Value::Int(1)), ("ü", Value::Array(vec![Value::Nil]))]),
            Value::Array(vec![]),
            Value::Nil,
        ];
        // Python's server is HTTP/1.0 and closes each connection: many calls in a row must work.
        for _ in 0..3 {
            let got = c.call("echo", &sent).await.expect("echo");
            let mut want = sent.clone();
            want[2] = Value::Int(-5); // Python reads i8 and writes int when it fits.
            assert_eq!(got, Value::Array(want));
        }
        let types: Vec<String> = c.call_typed("types", (1i32, 9_000_000_000i64, "s", 1.5f64)).await.expect("types");
        assert_eq!(types, ["int", "int", "str", "float"], "Python reads our i8 as an int");
        match c.call("echo", &[Value::I8(9_000_000_000)]).await {
            Err(Error::Fault(f)) => assert!(f.string.contains("int exceeds XML-RPC limits"), "{f}"),
            other => panic!("Python cannot return a 64-bit int: {other:?}"),
        }
        match c.call("fail", &[Value::Int(4242), Value::String("bööm".into())]).await {
            Err(Error::Fault(f)) => assert_eq!(f, Fault::new(4242, "bööm")),
            other => panic!("{other:?}"),
        }
        match c.call("nope", &[]).await {
            Err(Error::Fault(f)) => assert!(f.string.contains("nope"), "{f}"),
            other => panic!("{other:?}"),
        }
        let m = c
            .multicall(&[("echo", vec![Value::Int(1)]), ("fail", vec![Value::Int(7), Value::String("x".into())])])
            .await
            .expect("multicall");
        assert_eq!(m[0], Ok(Value::Array(vec![Value::Int(1)])));
        assert_eq!(m[1], Err(Fault::new(7, "x")));
        let methods: Vec<String> = c.call_typed("system.listMethods", ()).await.expect("list");
        assert!(methods.contains(&"struct20".to_string()));
    });
    drop(py);

    // Without allow_none Python's server cannot send nil back: a fault, not a broken connection.
    let py = python_server("no_none");
    let url = format!("http://127.0.0.1:{}/", py.1);
    rt().block_on(async {
        let c = Client::new(&url).expect("client");
        match c.call("echo", &[Value::Nil]).await {
            Err(Error::Fault(f)) => assert!(f.string.contains("allow_none"), "{f}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(c.call("echo", &[Value::Int(1)]).await.expect("still fine"), Value::Array(vec![Value::Int(1)]));
    });
}

#[derive(Deserialize)]
struct Greeting {
    name: String,
    times: usize,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Sum(i32);

fn our_server() -> Server {
    let mut s = Server::new();
    s.register("echo", "Returns its parameters.", &[], |params| Ok(Value::Array(params)));
    s.register("fail", "Always fails.", &[], |_| Err(Fault::new(4242, "boom: ünïcode")));
    s.register_typed("add", "Adds two integers.", &[&["int", "int", "int"]], |(a, b): (i32, i32)| Ok(a + b));
    s.register_typed("greet", "Greets.", &[&["string", "struct"]], |(g,): (Greeting,)| {
        Ok(vec![format!("Hello {}!", g.name); g.times].join(" "))
    });
    s.register("big", "64-bit integers.", &[], |_| {
        Ok(Value::Array(vec![Value::I8(i64::MAX), Value::I8(i64::MIN), Value::I8(1 << 32)]))
    });
    s.register("dates", "A dateTime.", &[], |_| {
        Ok(Value::Array(vec![Value::DateTime(DateTime::parse("1998-07-17T14:08:55").unwrap_or(DateTime {
            year: 1998,
            month: 7,
            day: 17,
            hour: 14,
            minute: 8,
            second: 55,
            offset_minutes: None,
        }))]))
    });
    s
}

#[test]
fn python_client_against_our_server() {
    let rt = rt();
    let (url, auth_url) = rt.block_on(async {
        let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let locked = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let (a, b) = (open.local_addr().expect("addr"), locked.local_addr().expect("addr"));
        tokio::spawn(Arc::new(our_server()).serve(open, std::future::pending()));
        tokio::spawn(Arc::new(our_server().with_basic_auth("vrgw", "secret")).serve(locked, std::future::pending()));
        (format!("http://{a}/RPC2"), format!("http://vrgw:secret@{b}/RPC2"))
    });
    let out =
        Command::new("python3").arg(format!("{PY}/client.py")).arg(&url).arg(&auth_url).output().expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python client failed:\n{stdout}\n{stderr}");
    assert!(stdout.trim().starts_with("ok "), "{stdout}");
    let n: usize = stdout.trim().trim_start_matches("ok ").trim_end_matches(" checks").parse().expect("count");
    assert_eq!(n, 28, "every check of client.py must run");

    // And our own client with typed calls and a tuple struct result.
    rt.block_on(async {
        let c = Client::new(&url).expect("client");
        let s: Sum = c.call_typed("add", (40, 2)).await.expect("add");
        assert_eq!(s, Sum(42));
        let wrong = Client::new(&auth_url.replace(":secret@", ":nope@")).expect("client");
        match wrong.call("add", &[Value::Int(1), Value::Int(2)]).await {
            Err(Error::Http(401, _)) => {}
            other => panic!("{other:?}"),
        }
    });
}
