//! The embedded JavaScript engine (QuickJS through `rquickjs`): a script checked once when it
//! is stored, and run in the thread's engine (a runtime and context made once per thread with
//! every built-in frozen, and the scripts it compiled) with a memory limit, a stack limit and a
//! time limit per run, GenieACS's sandbox functions (`declare`, `clear`, `commit`, `ext`, `log`, `args`, a
//! `Date` fixed at the session's start, a `Math.random` seeded by the device) backed by a
//! [`Host`]. Values cross between the two sides as JSON text, so the host never touches an
//! engine value.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rquickjs::{CatchResultExt, CaughtError, Context, Ctx, Function, Runtime};
use serde_json::Value as Json;

/// What one run may use.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The longest a run may take (wall-clock time of the run, which bounds its CPU time).
    pub time: Duration,
    /// The most memory the run's heap may hold.
    pub memory: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { time: Duration::from_millis(500), memory: 32 << 20 }
    }
}

/// The deepest the engine's own stack may grow (below the 2 MiB of a blocking thread).
const STACK: usize = 512 << 10;

/// Where a script went wrong: its line and column (1-based) when the engine told them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// `SyntaxError`, `TypeError`, `ReferenceError`, ..., or `timeout`, `memory`.
    pub name: String,
    /// The engine's message.
    pub message: String,
    /// Line in the script.
    pub line: Option<u32>,
    /// Column in the line.
    pub column: Option<u32>,
    /// The engine's stack, trimmed to the script's frames.
    pub stack: String,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.name, self.message)?;
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, " (line {l}, column {c})"),
            (Some(l), None) => write!(f, " (line {l})"),
            _ => Ok(()),
        }
    }
}

/// Why a host function stopped.
#[derive(Debug)]
pub enum Stop {
    /// The run cannot go on before the session fetches, sets or calls something: it ends here
    /// and runs again from the start once that is done (GenieACS's commit).
    Interrupt,
    /// The script called a function wrongly: a `TypeError` it sees.
    Type(String),
}

/// The sandbox's functions, as the session answers them. Arguments and results are JSON.
pub trait Host {
    /// `declare(path, timestamps, values)`: the declaration's number.
    fn declare(&mut self, path: &str, timestamps: &Json, values: &Json) -> Result<usize, Stop>;
    /// An attribute (`value`, `writable`, `object`, `path`) of a declaration's first match
    /// (`item` `None`) or of its `item`th; `None`: undefined.
    fn get(&mut self, decl: usize, item: Option<usize>, attr: &str) -> Result<Option<Json>, Stop>;
    /// How many parameters a declaration matches (`None`: undefined, none).
    fn size(&mut self, decl: usize) -> Result<Option<usize>, Stop>;
    /// `clear(path, timestamp, attributes)`.
    fn clear(&mut self, path: &str, timestamp: f64, attributes: &Json) -> Result<(), Stop>;
    /// `commit()`.
    fn commit(&mut self) -> Result<(), Stop>;
    /// `ext(file, function, args...)`: the extension's result.
    fn ext(&mut self, call: Vec<String>) -> Result<Json, Stop>;
    /// `log(message)`.
    fn log(&mut self, message: String);
}

/// How a run ended.
#[derive(Debug)]
pub enum Outcome {
    /// The script ran to its end; what it returned (JSON; `Null` for nothing).
    Done(Json),
    /// A host function interrupted it.
    Interrupted,
    /// It threw, ran out of time or memory.
    Fault(Error),
}

/// Evaluated once per engine: `__sandbox(host, now, device)` makes a run's sandbox functions,
/// then every object reachable from the global object (and the intrinsics that are not) is
/// frozen, so that no run leaves anything behind for the next one (GenieACS shares one context
/// between runs the same way, without freezing it).
const PRELUDE: &str = r#""use strict";
(function (g) {
  const RealDate = Date, RealMath = Math, freeze = Object.freeze;
  // What declare() returns: the first match's attributes, `size`, and each match in turn.
  class Param {
    #call; #d; #i;
    constructor(call, d, i) { this.#call = call; this.#d = d; this.#i = i; }
    get value() { return this.#call("get", this.#d, this.#i, "value"); }
    get writable() { return this.#call("get", this.#d, this.#i, "writable"); }
    get object() { return this.#call("get", this.#d, this.#i, "object"); }
    get path() { return this.#call("get", this.#d, this.#i, "path"); }
    get size() { return this.#i === null ? this.#call("size", this.#d) : 1; }
    *[Symbol.iterator]() {
      const n = this.#i === null ? this.#call("size", this.#d) || 0 : 1;
      for (let k = 0; k < n; k++) yield new Param(this.#call, this.#d, this.#i === null ? k : this.#i);
    }
  }
  const sandbox = (host, now, device) => {
    const call = (op, ...a) => {
      const r = host(op, JSON.stringify(a));
      return r === undefined ? undefined : JSON.parse(r);
    };
    const declare = (path, timestamps, values) =>
      new Param(call, call("declare", String(path), timestamps || {}, values || {}), null);
    const clear = (path, timestamp, attributes) => {
      call("clear", String(path), Number(timestamp), attributes || {});
    };
    const commit = () => { call("commit"); };
    const ext = (...a) => call("ext", a.map(String));
    const log = (msg) => { call("log", String(msg)); };
    class SandboxDate extends RealDate {
      constructor(...a) { if (a.length) super(...a); else super(now); }
      // GenieACS's Date.now(interval, variance): the start of the interval the session is in,
      // shifted by a per-device offset below `variance` (default: the interval).
      static now(interval, variance) {
        if (interval === undefined) return now;
        if (typeof interval !== "number" || !(interval > 0))
          throw new TypeError("Date.now takes an interval in ms (a cron expression is not read)");
        const v = variance === undefined ? interval : Number(variance);
        const offset = v > 0 ? device % v : 0;
        return Math.trunc((now + offset) / interval) * interval - offset;
      }
    }
    let seed = device || 1;
    const math = Object.create(RealMath, { random: { value: () => {
      seed ^= seed << 13; seed >>>= 0;
      seed ^= seed >>> 17;
      seed ^= seed << 5; seed >>>= 0;
      return seed / 4294967296;
    } } });
    return [declare, clear, commit, ext, log, freeze(SandboxDate), freeze(math)];
  };
  Object.defineProperty(g, "__sandbox", { value: sandbox });
  const seen = new Set();
  const harden = (o) => {
    if ((typeof o !== "object" && typeof o !== "function") || o === null || seen.has(o)) return;
    seen.add(o);
    freeze(o);
    harden(Object.getPrototypeOf(o));
    for (const k of Reflect.ownKeys(o)) {
      const d = Object.getOwnPropertyDescriptor(o, k);
      if ("value" in d) harden(d.value); else { harden(d.get); harden(d.set); }
    }
  };
  // What is not reachable from the global object: the sandbox's own class and its iterator,
  // generators, async functions and generators, the built-in iterators and iterator helpers.
  const intrinsics = [
    () => Param, () => new Param(() => 0, 0, null)[Symbol.iterator](), () => sandbox,
    () => function* () {}, () => (function* () {})(), () => async function () {},
    () => async function* () {}, () => (async function* () {})(), () => async () => {},
    () => [][Symbol.iterator](), () => ""[Symbol.iterator](), () => new Map()[Symbol.iterator](),
    () => new Set()[Symbol.iterator](), () => /a/[Symbol.matchAll](""), () => [].values().map((x) => x),
    () => Iterator.from({ next() { return { done: true }; } }), () => Promise.resolve(),
  ];
  harden(g);
  for (const f of intrinsics) {
    let o;
    try { o = f(); } catch (e) { continue; }
    harden(o);
  }
})(globalThis);
"#;

/// The text before a script on its first line (so its lines keep their numbers): the script
/// is the body of a function of the sandbox's names.
const HEAD: &str = "\"use strict\";(function(declare,clear,commit,ext,log,Date,Math,args){";
/// The function HEAD opens, as the engine shows its source (`toString`).
const FUNCTION: &str = "function(declare,clear,commit,ext,log,Date,Math,args){";

/// A script checked by the engine: its name (for errors and logs) and source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// The provision's or virtual parameter's name.
    pub name: String,
    /// The source as stored.
    pub source: String,
}

fn runtime(limits: Limits) -> Result<(Runtime, Context), Error> {
    let engine = |e: rquickjs::Error| engine_error(format!("the script engine could not start: {e}"));
    let rt = Runtime::new().map_err(engine)?;
    rt.set_memory_limit(limits.memory);
    rt.set_max_stack_size(STACK);
    let ctx = Context::full(&rt).map_err(engine)?;
    Ok((rt, ctx))
}

/// The script's position in a stack line `    at f (name:3:7)`.
fn position(stack: &str, name: &str) -> (Option<u32>, Option<u32>) {
    let needle = format!("{name}:");
    for line in stack.lines() {
        if let Some(i) = line.find(&needle) {
            let rest = &line[i + needle.len()..];
            let mut nums = rest.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty());
            let l = nums.next().and_then(|n| n.parse::<u32>().ok());
            let c = nums.next().and_then(|n| n.parse::<u32>().ok());
            // The first line starts after the wrapper's head.
            let c = match (l, c) {
                (Some(1), Some(c)) => Some(c.saturating_sub(HEAD.len() as u32).max(1)),
                (_, c) => c,
            };
            return (l, c);
        }
    }
    (None, None)
}

fn caught<'js>(ctx: &Ctx<'js>, e: CaughtError<'js>, name: &str, timed_out: bool) -> Error {
    let mut err = match e {
        CaughtError::Exception(ex) => {
            let stack = ex.stack().unwrap_or_default();
            let kind: Option<String> = ex.as_object().get::<_, Option<String>>("name").ok().flatten();
            let (line, column) = position(&stack, name);
            let stack: String =
                stack.lines().filter(|l| l.contains(&format!("{name}:"))).collect::<Vec<_>>().join("\n");
            Error {
                name: kind.unwrap_or_else(|| "Error".into()),
                message: ex.message().unwrap_or_default(),
                line,
                column,
                stack,
            }
        }
        CaughtError::Value(v) => {
            let text = ctx
                .json_stringify(v)
                .ok()
                .flatten()
                .and_then(|s| s.to_string().ok())
                .unwrap_or_else(|| "a value that is not an Error".into());
            Error {
                name: "Error".into(),
                message: format!("threw {text}"),
                line: None,
                column: None,
                stack: String::new(),
            }
        }
        CaughtError::Error(e) => engine_error(e.to_string()),
    };
    if timed_out {
        err.name = "timeout".into();
    } else if err.message.contains("out of memory") {
        err.name = "memory".into();
    }
    err
}

fn options(name: &str) -> rquickjs::context::EvalOptions {
    let mut o = rquickjs::context::EvalOptions::default();
    o.global = true;
    o.strict = true;
    o.filename = Some(name.to_string());
    o
}

/// Compiles `source` without running it: a syntax error with its line and column.
pub fn check(name: &str, source: &str) -> Result<(), Error> {
    // A throwaway runtime: compiling the wrapper evaluates one function expression; whatever a
    // script that closes its wrapper put beside it runs here only, and for 100 ms at most.
    let (rt, ctx) = runtime(Limits { time: Duration::from_secs(1), memory: 16 << 20 })?;
    let deadline = Instant::now() + Duration::from_millis(100);
    rt.set_interrupt_handler(Some(Box::new(move || Instant::now() > deadline)));
    let outcome = ctx.with(|ctx| {
        let text = format!("{HEAD}{source}\n}})");
        let compiled = ctx.eval_with_options::<rquickjs::Value, _>(text, options(name)).catch(&ctx);
        let escaped = || Error {
            name: "SyntaxError".into(),
            message: "the script closes the function it is the body of".into(),
            line: None,
            column: None,
            stack: String::new(),
        };
        let f = match compiled {
            Ok(v) => v.into_function(),
            Err(e) => {
                let e = caught(&ctx, e, name, false);
                // Anything but a syntax error means something ran: outside the function.
                return Err(if e.name == "SyntaxError" { e } else { escaped() });
            }
        };
        // The function must be the whole of what was compiled: a script that closes it (`});
        // ...; (function(){`) is refused, since its outside would run in the shared engine.
        let shown = f.and_then(|f| {
            let to_string: Function = f.get("toString").ok()?;
            to_string.call::<_, String>((rquickjs::function::This(f.clone()),)).ok()
        });
        match shown {
            Some(text) if text == format!("{FUNCTION}{source}\n}}") => Ok(()),
            _ => Err(escaped()),
        }
    });
    drop(ctx);
    drop(rt);
    outcome
}

/// A runtime and its context with the prelude evaluated, kept by a thread between runs, with
/// the scripts it compiled (a script is a function of the sandbox's names: nothing of a run
/// stays in it).
struct Engine {
    // Dropped in this order: the saved functions, the context, then the runtime they live in.
    compiled: RefCell<std::collections::HashMap<(String, String), rquickjs::Persistent<Function<'static>>>>,
    ctx: Context,
    rt: Runtime,
}

/// The most compiled scripts an engine keeps.
const COMPILED: usize = 256;

thread_local! {
    /// This thread's engine (made at its first run; dropped after a run that hit a limit).
    static ENGINE: RefCell<Option<Engine>> = const { RefCell::new(None) };
}

fn engine_error(message: String) -> Error {
    Error { name: "engine".into(), message, line: None, column: None, stack: String::new() }
}

impl Engine {
    fn new(limits: Limits) -> Result<Engine, Error> {
        let (rt, ctx) = runtime(limits)?;
        ctx.with(|ctx| ctx.eval::<(), _>(PRELUDE))
            .map_err(|e| engine_error(format!("the sandbox could not be set up: {e}")))?;
        Ok(Engine { compiled: RefCell::new(std::collections::HashMap::new()), ctx, rt })
    }
}

/// Runs `script` with `args`, `now` (ms since the epoch, `Date.now()`), `seed` (the device's:
/// `Math.random` and `Date.now`'s offsets), the sandbox's functions answered by `host`, within
/// `limits`; in this thread's engine.
pub fn run<H: Host + 'static>(
    script: &Script,
    args: &Json,
    now: i64,
    seed: u32,
    host: Rc<RefCell<H>>,
    limits: Limits,
) -> Outcome {
    ENGINE.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            match Engine::new(limits) {
                Ok(e) => *slot = Some(e),
                Err(e) => return Outcome::Fault(e),
            }
        }
        let Some(engine) = slot.as_ref() else { return Outcome::Fault(engine_error("no engine".into())) };
        let (outcome, spent) = run_in(engine, script, args, now, seed, host, limits);
        if spent {
            // A run stopped by a limit may leave the heap or the stack anywhere: a new engine.
            // (Otherwise reference counting frees a run's objects; cycles wait for QuickJS's own
            // collection, which the memory limit counts.)
            *slot = None;
        }
        outcome
    })
}

/// A run in `engine`; whether it was stopped by a limit.
fn run_in<H: Host + 'static>(
    engine: &Engine,
    script: &Script,
    args: &Json,
    now: i64,
    seed: u32,
    host: Rc<RefCell<H>>,
    limits: Limits,
) -> (Outcome, bool) {
    let rt = &engine.rt;
    // Compiled in the shared engine only once it is known to be a function body and nothing
    // else (see `check`).
    let key = (script.name.clone(), script.source.clone());
    if !engine.compiled.borrow().contains_key(&key) {
        if let Err(e) = check(&script.name, &script.source) {
            return (Outcome::Fault(e), false);
        }
    }
    rt.set_memory_limit(limits.memory);
    let interrupted = Rc::new(RefCell::new(false));
    // The host, for this run only: a function of the sandbox kept past the run (a pending job)
    // finds nothing.
    let alive: Rc<RefCell<Option<Rc<RefCell<H>>>>> = Rc::new(RefCell::new(Some(host)));
    // Set by the host when it interrupts: the engine then stops the script even where it
    // catches the interruption.
    let stop = Arc::new(AtomicBool::new(false));
    let timed_out = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + limits.time;
    {
        let (stop, timed_out) = (stop.clone(), timed_out.clone());
        rt.set_interrupt_handler(Some(Box::new(move || {
            if Instant::now() > deadline {
                timed_out.store(true, Ordering::Relaxed);
                return true;
            }
            stop.load(Ordering::Relaxed)
        })));
    }
    let outcome = engine.ctx.with(|ctx| {
        let (h, flag, stop) = (alive.clone(), interrupted.clone(), stop.clone());
        let native = Function::new(ctx.clone(), move |ctx: Ctx<'_>, op: String, a: String| {
            let a: Vec<Json> = serde_json::from_str(&a).unwrap_or_default();
            let s = |i: usize| a.get(i).and_then(Json::as_str).unwrap_or_default().to_string();
            let n = |i: usize| a.get(i).and_then(Json::as_u64).map(|n| n as usize);
            if *flag.borrow() && op != "log" {
                return Err(rquickjs::Exception::throw_internal(&ctx, "interrupted"));
            }
            let Some(host) = h.borrow().clone() else {
                return Err(rquickjs::Exception::throw_internal(&ctx, "the run is over"));
            };
            let mut host = host.borrow_mut();
            let answer: Result<Option<Json>, Stop> = match op.as_str() {
                "declare" => host
                    .declare(&s(0), a.get(1).unwrap_or(&Json::Null), a.get(2).unwrap_or(&Json::Null))
                    .map(|d| Some(Json::from(d))),
                "get" => host.get(n(0).unwrap_or(0), n(1), &s(2)),
                "size" => host.size(n(0).unwrap_or(0)).map(|n| n.map(Json::from)),
                "clear" => host
                    .clear(&s(0), a.get(1).and_then(Json::as_f64).unwrap_or(0.0), a.get(2).unwrap_or(&Json::Null))
                    .map(|()| None),
                "commit" => host.commit().map(|()| None),
                "ext" => {
                    let call = a.first().and_then(Json::as_array).into_iter().flatten();
                    host.ext(call.map(|v| v.as_str().unwrap_or_default().to_string()).collect()).map(Some)
                }
                "log" => {
                    host.log(s(0));
                    Ok(None)
                }
                other => Err(Stop::Type(format!("no sandbox function {other}"))),
            };
            match answer {
                Ok(v) => Ok(v.map(|v| v.to_string())),
                Err(Stop::Interrupt) => {
                    *flag.borrow_mut() = true;
                    stop.store(true, Ordering::Relaxed);
                    Err(rquickjs::Exception::throw_internal(&ctx, "interrupted"))
                }
                Err(Stop::Type(msg)) => Err(rquickjs::Exception::throw_type(&ctx, &msg)),
            }
        });
        let prepared = (|| -> rquickjs::Result<(Function<'_>, rquickjs::Array<'_>, rquickjs::Value<'_>)> {
            let make: Function = ctx.globals().get("__sandbox")?;
            let parts: rquickjs::Array = make.call((native?, now as f64, seed))?;
            let args = ctx.json_parse(args.to_string())?;
            let key = (script.name.clone(), script.source.clone());
            let cached = engine.compiled.borrow().get(&key).cloned();
            let f: Function = match cached {
                Some(f) => f.restore(&ctx)?,
                None => {
                    let f: Function =
                        ctx.eval_with_options(format!("{HEAD}{}\n}})", script.source), options(&script.name))?;
                    let mut compiled = engine.compiled.borrow_mut();
                    if compiled.len() >= COMPILED {
                        compiled.clear();
                    }
                    compiled.insert(key, rquickjs::Persistent::save(&ctx, f.clone()));
                    f
                }
            };
            Ok((f, parts, args))
        })()
        .catch(&ctx);
        let (f, parts, args) = match prepared {
            Ok(p) => p,
            Err(e) => return Outcome::Fault(caught(&ctx, e, &script.name, false)),
        };
        let mut call_args = rquickjs::function::Args::new(ctx.clone(), 8);
        let pushed = (|| -> rquickjs::Result<()> {
            for i in 0..parts.len() {
                call_args.push_arg(parts.get::<rquickjs::Value>(i)?)?;
            }
            call_args.push_arg(args)
        })();
        if let Err(e) = pushed {
            return Outcome::Fault(engine_error(format!("the sandbox could not be set up: {e}")));
        }
        match f.call_arg::<rquickjs::Value>(call_args).catch(&ctx) {
            _ if *interrupted.borrow() => Outcome::Interrupted,
            Ok(v) if v.is_undefined() => Outcome::Done(Json::Null),
            Ok(v) => {
                let text = ctx.json_stringify(v).ok().flatten().and_then(|s| s.to_string().ok());
                Outcome::Done(text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Json::Null))
            }
            Err(e) => Outcome::Fault(caught(&ctx, e, &script.name, timed_out.load(Ordering::Relaxed))),
        }
    });
    rt.set_interrupt_handler(None);
    *alive.borrow_mut() = None;
    // A run that left jobs (a promise's continuation) would leave them to the next: this
    // engine goes, with them.
    let spent = rt.is_job_pending()
        || matches!(&outcome, Outcome::Fault(e) if matches!(e.name.as_str(), "timeout" | "memory" | "InternalError" | "engine"));
    (outcome, spent)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host whose declarations all read as `["v", "xsd:string"]` and that interrupts at `commit()`.
    #[derive(Default)]
    struct Echo {
        declared: Vec<String>,
        logs: Vec<String>,
    }

    impl Host for Echo {
        fn declare(&mut self, path: &str, _: &Json, _: &Json) -> Result<usize, Stop> {
            self.declared.push(path.to_string());
            Ok(self.declared.len() - 1)
        }
        fn get(&mut self, decl: usize, _: Option<usize>, attr: &str) -> Result<Option<Json>, Stop> {
            Ok(match attr {
                "value" => Some(serde_json::json!([self.declared[decl], "xsd:string"])),
                _ => None,
            })
        }
        fn size(&mut self, _: usize) -> Result<Option<usize>, Stop> {
            Ok(Some(2))
        }
        fn clear(&mut self, _: &str, _: f64, _: &Json) -> Result<(), Stop> {
            Ok(())
        }
        fn commit(&mut self) -> Result<(), Stop> {
            Err(Stop::Interrupt)
        }
        fn ext(&mut self, call: Vec<String>) -> Result<Json, Stop> {
            if call.first().is_some_and(|f| f == "bad") {
                return Err(Stop::Type("no such extension".into()));
            }
            Ok(Json::from(call))
        }
        fn log(&mut self, message: String) {
            self.logs.push(message);
        }
    }

    fn go(source: &str, limits: Limits) -> (Outcome, Echo) {
        let host = Rc::new(RefCell::new(Echo::default()));
        let script = Script { name: "p".into(), source: source.into() };
        let out = run(&script, &serde_json::json!(["a", 2]), 1_700_000_000_000, 7, host.clone(), limits);
        let echo = std::mem::take(&mut *host.borrow_mut());
        (out, echo)
    }

    #[test]
    fn syntax_errors_name_their_line_and_column() {
        assert_eq!(check("p", "let a = 1;\nreturn a;"), Ok(()), "a return at the top is GenieACS's");
        let e = check("p", "let a = 1;\nlet b = ;\n").expect_err("a syntax error");
        assert_eq!((e.name.as_str(), e.line), ("SyntaxError", Some(2)), "{e:?}");
        assert!(e.column.is_some(), "{e:?}");
        let e = check("p", "let x = (;").expect_err("on the first line");
        assert_eq!(e.line, Some(1), "{e:?}");
        assert!(e.column.is_some_and(|c| c < 12), "the column within the script's own line: {e:?}");
    }

    #[test]
    fn the_sandbox_api_answers_through_the_host() {
        let (out, echo) = go(
            "const s = declare('Device.X', {value: 1});\n\
             log('v=' + s.value[0] + ' size=' + s.size + ' args=' + args.join(','));\n\
             let n = 0; for (const p of declare('Device.Y.*', {value: Date.now()})) n++;\n\
             return {n, now: Date.now(), d: new Date().getTime(), r: Math.random(), e: ext('f', 'g', 1),\n\
               hour: Date.now(3600000, 0), day: Date.now(86400000)};",
            Limits::default(),
        );
        let Outcome::Done(v) = out else { panic!("{out:?}") };
        assert_eq!(v["n"], 2);
        assert_eq!(v["now"], 1_700_000_000_000i64);
        assert_eq!(v["d"], 1_700_000_000_000i64, "new Date() is the session's time too");
        assert_eq!(v["hour"], 1_700_000_000_000i64 / 3_600_000 * 3_600_000, "the hour's start");
        let day = v["day"].as_i64().expect("a number");
        assert!(day <= 1_700_000_000_000 && day > 1_700_000_000_000 - 86_400_000, "{day}: within the last day");
        assert_eq!(day % 1000, 1000 - 7, "shifted back by the device's offset (seed 7 ms)");
        assert_eq!(v["e"], serde_json::json!(["f", "g", "1"]));
        let r = v["r"].as_f64().expect("a number");
        assert!((0.0..1.0).contains(&r));
        let (Outcome::Done(again), _) = go("return Math.random();", Limits::default()) else { panic!() };
        assert_eq!(again.as_f64(), Some(r), "seeded: the same draw in every run");
        assert_eq!(echo.declared, ["Device.X", "Device.Y.*"]);
        assert_eq!(echo.logs, ["v=Device.X size=2 args=a,2"]);
    }

    #[test]
    fn a_run_leaves_nothing_behind_for_the_next() {
        let (out, _) = go("Array.prototype.push = () => 0;", Limits::default());
        let Outcome::Fault(e) = out else { panic!("{out:?}") };
        assert_eq!(e.name, "TypeError", "the built-ins are frozen: {e:?}");
        let (out, _) = go("globalThis.leak = 1;", Limits::default());
        assert!(matches!(out, Outcome::Fault(_)), "no globals to share: {out:?}");
        let (out, _) = go("const a = []; a.push(1, 2); return [a.length, typeof leak];", Limits::default());
        let Outcome::Done(v) = out else { panic!("{out:?}") };
        assert_eq!(v, serde_json::json!([2, "undefined"]));
    }

    #[test]
    fn a_script_that_closes_its_function_is_refused_before_anything_runs() {
        let t = Instant::now();
        let e = check("p", "}); for (;;) {} (function(){").expect_err("escaped");
        assert_eq!(e.message, "the script closes the function it is the body of");
        assert!(t.elapsed() < Duration::from_secs(2), "nothing ran");
        let (out, _) = go("}); let leak = []; (function(){", Limits::default());
        assert!(matches!(&out, Outcome::Fault(e) if e.message.contains("closes")), "{out:?}");
        let (out, _) = go("return typeof leak;", Limits::default());
        assert!(matches!(&out, Outcome::Done(v) if v == "undefined"), "{out:?}");
        assert_eq!(check("p", "let s = '}); (function(){'; // })\nreturn s;"), Ok(()), "in a string or comment");
    }

    #[test]
    fn the_sandboxs_own_objects_and_pending_jobs_do_not_outlive_a_run() {
        let (out, _) = go(
            "Object.defineProperty(Object.getPrototypeOf(declare('A')), 'value', {get() { return 1; }});",
            Limits::default(),
        );
        assert!(matches!(&out, Outcome::Fault(e) if e.name == "TypeError"), "{out:?}");
        let (out, _) = go("Object.getPrototypeOf([].values().map((x) => x)).next = null;", Limits::default());
        assert!(matches!(&out, Outcome::Fault(e) if e.name == "TypeError"), "{out:?}");
        let (out, _) = go("Promise.resolve().then(() => declare('late'));", Limits::default());
        assert!(matches!(out, Outcome::Done(_)), "{out:?}");
        let (out, echo) = go("declare('B'); return 2;", Limits::default());
        assert!(matches!(&out, Outcome::Done(v) if v == 2), "{out:?}");
        assert_eq!(echo.declared, ["B"], "the earlier run's job never reached this host");
    }

    #[test]
    fn an_interruption_ends_the_run_even_where_it_is_caught() {
        let (out, _) = go("try { commit(); } catch (e) {}\ndeclare('Device.Z', null, {value: 1});", Limits::default());
        assert!(matches!(out, Outcome::Interrupted), "{out:?}");
    }

    #[test]
    fn throws_loops_and_allocations_fault_with_their_place() {
        let (out, _) = go("let a = 1;\n\nnull.x;", Limits::default());
        let Outcome::Fault(e) = out else { panic!("{out:?}") };
        assert_eq!((e.name.as_str(), e.line), ("TypeError", Some(3)), "{e:?}");
        let (out, _) = go("ext('bad');", Limits::default());
        let Outcome::Fault(e) = out else { panic!("{out:?}") };
        assert_eq!(e.name, "TypeError");
        assert_eq!(e.message, "no such extension");
        let quick = Limits { time: Duration::from_millis(50), memory: 8 << 20 };
        let (out, _) = go("for (;;) {}", quick);
        let Outcome::Fault(e) = out else { panic!("{out:?}") };
        assert_eq!(e.name, "timeout", "{e:?}");
        let (out, _) = go(
            "const a = []; for (;;) a.push('x'.repeat(100000) + a.length);",
            Limits { time: Duration::from_secs(5), ..quick },
        );
        let Outcome::Fault(e) = out else { panic!("{out:?}") };
        assert_eq!(e.name, "memory", "{e:?}");
        let (out, _) = go("throw 'plain';", Limits::default());
        let Outcome::Fault(e) = out else { panic!("{out:?}") };
        assert_eq!(e.message, "threw \"plain\"");
    }
}
