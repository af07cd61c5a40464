//! Decodes a CWMP SOAP message and prints it as JSON, or the error with its position.
//!
//! `cargo run -p cwmp --example decode -- [--lenient] FILE` (exit code 1 on a decode error, 2 on
//! bad usage). `--lenient` reads it as the ACS reads a CPE and prints the quirks too.

use std::process::ExitCode;

use cwmp::{Envelope, Limits, Role};

fn main() -> ExitCode {
    let mut args: Vec<_> = std::env::args_os().skip(1).collect();
    let lenient = args.first().is_some_and(|a| a == "--lenient");
    if lenient {
        args.remove(0);
    }
    let [path] = args.as_slice() else {
        eprintln!("usage: decode [--lenient] FILE");
        return ExitCode::from(2);
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{}: {e}", path.to_string_lossy());
            return ExitCode::from(2);
        }
    };
    let json = if lenient {
        Envelope::decode_lenient(&bytes, &Limits::default()).map(|d| serde_json::to_string_pretty(&d))
    } else {
        Envelope::decode(&bytes, &Limits::default()).map(|e| serde_json::to_string_pretty(&e))
    };
    match json {
        Ok(Ok(json)) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("cannot render JSON: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!(
                "{}:{}:{}: {} (a CPE would answer fault {}, an ACS fault {})",
                path.to_string_lossy(),
                e.line,
                e.column,
                e.kind,
                e.fault_code(Role::Cpe).code(),
                e.fault_code(Role::Acs).code()
            );
            ExitCode::FAILURE
        }
    }
}
