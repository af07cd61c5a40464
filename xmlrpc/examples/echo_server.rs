//! A small XML-RPC server for manual tests and load generators: `echo` and `struct20` return
//! their parameters. `cargo run --release -p xmlrpc --example echo_server -- 127.0.0.1:8000`

use std::sync::Arc;

use xmlrpc::{Fault, Server, Value};

fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8000".into());
    let workers = std::env::var("WORKERS").ok().and_then(|w| w.parse().ok()).unwrap_or(2);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build()?;
    rt.block_on(async {
        let mut s = Server::new();
        s.register("echo", "Returns its parameters.", &[], |p| Ok(Value::Array(p)));
        s.register("struct20", "Returns its struct.", &[&["struct", "struct"]], |mut p| {
            p.pop().ok_or_else(|| Fault::new(Fault::INVALID_PARAMS, "one struct"))
        });
        let l = tokio::net::TcpListener::bind(&addr).await?;
        println!("serving on http://{}/RPC2", l.local_addr()?);
        Arc::new(s)
            .serve(l, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
    })
}
