//! Decodes a CWMP SOAP message and prints it as JSON, or the error with its position.
//!
//! `cargo run -p cwmp --example decode -- FILE` (exit code 1 on a decode error, 2 on bad usage).

use std::process::ExitCode;

use cwmp::{Envelope, Limits, Role};

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: decode FILE");
        return ExitCode::from(2);
    };
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{}: {e}", path.to_string_lossy());
            return ExitCode::from(2);
        }
    };
    match Envelope::decode(&bytes, &Limits::default()) {
        Ok(env) => match serde_json::to_string_pretty(&env) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("cannot render JSON: {e}");
                ExitCode::FAILURE
            }
        },
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
