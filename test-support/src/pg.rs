//! A PostgreSQL cluster of the tests' own: `initdb` into a temp directory, `postgres` on a free
//! loopback port, one fresh database per caller ([`Cluster::database`]). One cluster per test
//! process, started by the first caller; a watchdog beside it stops it and removes its directory
//! when the test process is gone (a test binary has no exit hook for statics).
//!
//! As root (CI), everything runs as Debian's `postgres` user (`initdb` refuses root). Password
//! authentication (SCRAM) on loopback, as a deployment has it: the password lives in a file of
//! the caller's own (mode 0600), never in an argument. Durability is off (`fsync=off`): tests
//! kill processes, not machines.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The superuser the tests' databases belong to.
pub const USER: &str = "vrgw";

/// A running cluster.
pub struct Cluster {
    /// Its loopback port.
    pub port: u16,
    /// Where its programs are (`initdb`, `postgres`, `psql`).
    bin: PathBuf,
    /// Its directory (data, socket, log, password file).
    pub dir: PathBuf,
    password: String,
}

/// A fresh database in the cluster.
#[derive(Debug, Clone)]
pub struct Database {
    /// `postgres://vrgw@127.0.0.1:PORT/NAME` (no password in it).
    pub url: String,
    /// A file holding the password (mode 0600, the caller's).
    pub password_file: PathBuf,
    /// The database's name.
    pub name: String,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();
static DATABASES: AtomicUsize = AtomicUsize::new(0);

/// The process's cluster, started on the first call. Panics (with what failed) when PostgreSQL
/// cannot start: the tests that need it must not pass without it.
pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| Cluster::start().unwrap_or_else(|e| panic!("the tests' PostgreSQL cluster: {e}")))
}

/// The directory of PostgreSQL's programs: Debian's newest `/usr/lib/postgresql/N/bin`, else
/// wherever `initdb` is on the PATH.
fn bin_dir() -> Result<PathBuf, String> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
                .filter(|(_, p): &(u32, PathBuf)| p.join("initdb").exists())
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    if let Some((_, p)) = versions.pop() {
        return Ok(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .find(|d| d.join("initdb").exists())
        .ok_or_else(|| "no initdb (Debian: apt-get install postgresql-15)".to_string())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

/// A command run as the cluster's owner (`postgres` when we are root).
fn as_owner(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// A loopback port free now (bound and let go: the caller binds it soon).
pub fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("a free port: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

impl Cluster {
    fn start() -> Result<Cluster, String> {
        let bin = bin_dir()?;
        let dir = std::env::temp_dir().join(format!("vrgw-pg-{}-{}", std::process::id(), free_port()?));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut password = [0u8; 12];
        getrandom(&mut password)?;
        let password: String = password.iter().map(|b| format!("{b:02x}")).collect();
        let pwfile = dir.join("initdb-password");
        crate::temp::try_write_secret(&pwfile, &password)?;
        if is_root() {
            let st = Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir).status();
            if !st.map(|s| s.success()).unwrap_or(false) {
                return Err(format!("chown postgres {}", dir.display()));
            }
        }
        let out = as_owner(&bin.join("initdb"))
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-U", USER, "-E", "UTF8", "--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256", "-N"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .map_err(|e| format!("initdb: {e}"))?;
        let _ = std::fs::remove_file(&pwfile);
        if !out.status.success() {
            return Err(format!("initdb failed: {}", String::from_utf8_lossy(&out.stderr)));
        }
        let port = free_port()?;
        // The watchdog: postgres in the background; when the test process is gone, a fast
        // shutdown and the directory removed.
        let script = r#"
            "$PGBIN/postgres" -D "$PGDIR/data" -p "$PGPORT" -k "$PGDIR" -c listen_addresses=127.0.0.1 \
                -c fsync=off -c full_page_writes=off -c max_connections=200 >"$PGDIR/log" 2>&1 &
            pg=$!
            while [ -d "/proc/$WATCH" ] && kill -0 "$pg" 2>/dev/null; do sleep 0.5; done
            kill -INT "$pg" 2>/dev/null; wait "$pg"; rm -rf "$PGDIR"
        "#;
        as_owner(Path::new("/bin/sh"))
            .args(["-c", script])
            .env("PGBIN", &bin)
            .env("PGDIR", &dir)
            .env("PGPORT", port.to_string())
            .env("WATCH", std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting postgres: {e}"))?;
        let cluster = Cluster { port, bin, dir, password };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match cluster.psql("postgres", "SELECT 1") {
                Ok(_) => return Ok(cluster),
                Err(e) if Instant::now() > deadline => {
                    let log = std::fs::read_to_string(cluster.dir.join("log")).unwrap_or_default();
                    return Err(format!("not answering after 30 s: {e}\n{log}"));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Runs one SQL command in database `db` as the superuser; its output (unaligned, tuples
    /// only).
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", USER])
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-d", db, "-c", sql])
            .env("PGPASSWORD", &self.password)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("psql: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }

    /// Everything database `db` holds, as `pg_dump` writes its data.
    pub fn dump(&self, db: &str) -> Vec<u8> {
        let out = Command::new(self.bin.join("pg_dump"))
            .args(["--data-only", "-h", "127.0.0.1", "-U", USER, "-p"])
            .arg(self.port.to_string())
            .arg(db)
            .env("PGPASSWORD", &self.password)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("pg_dump: {e}"));
        assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }

    /// A new, empty database, and a password file for it in `dir` (one of the caller's).
    pub fn database_in(&self, dir: &Path) -> Database {
        let name = format!("t{}_{}", std::process::id(), DATABASES.fetch_add(1, Ordering::SeqCst));
        self.psql("postgres", &format!("CREATE DATABASE {name}")).unwrap_or_else(|e| panic!("CREATE DATABASE: {e}"));
        let password_file = dir.join(format!("{name}.pgpass"));
        crate::temp::try_write_secret(&password_file, &self.password).unwrap_or_else(|e| panic!("{e}"));
        Database { url: format!("postgres://{USER}@127.0.0.1:{}/{name}", self.port), password_file, name }
    }

    /// A new, empty database; its password file in the cluster's directory (removed with it).
    pub fn database(&self) -> Database {
        self.database_in(&self.dir)
    }
}

fn getrandom(buf: &mut [u8]) -> Result<(), String> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(buf)).map_err(|e| format!("/dev/urandom: {e}"))
}

/// `scripts/start-postgres DIR PORT`: the database's URL.
fn start_postgres(dir: &Path, port: u16) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace");
    let out = Command::new(root.join("scripts/start-postgres"))
        .arg(dir)
        .arg(port.to_string())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("scripts/start-postgres: {e}"));
    assert!(out.status.success(), "scripts/start-postgres: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A PostgreSQL cluster of one test's own that can be restarted (a database server going away
/// under load): made and started by `scripts/start-postgres` (as `scripts/run` does) in a
/// directory of the test's, stopped when dropped.
pub struct Restartable {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    /// Its database `acs`.
    pub database: Database,
}

impl Restartable {
    /// Makes and starts the cluster in `dir/pg` on a free port.
    pub fn start(dir: &Path) -> Restartable {
        let port = free_port().unwrap_or_else(|e| panic!("{e}"));
        let pg = dir.join("pg");
        let url = start_postgres(&pg, port);
        let password_file = dir.join("acs.pgpass");
        let password = std::fs::read_to_string(pg.join("password")).unwrap_or_else(|e| panic!("password: {e}"));
        crate::temp::try_write_secret(&password_file, password.trim()).unwrap_or_else(|e| panic!("{e}"));
        let bin = bin_dir().unwrap_or_else(|e| panic!("{e}"));
        Restartable { dir: pg, bin, port, database: Database { url, password_file, name: "acs".into() } }
    }

    fn pg_ctl(&self, args: &[&str]) {
        let out = as_owner(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("pg_ctl: {e}"));
        assert!(out.status.success(), "pg_ctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Runs one SQL command in its database `acs` (over its own socket, as its owner); the
    /// output (unaligned, tuples only).
    pub fn psql(&self, sql: &str) -> String {
        let out = as_owner(&self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-U", USER, "-h"])
            .arg(&self.dir)
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-d", "acs", "-c", sql])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("psql: {e}"));
        assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Stops the server (a fast shutdown: sessions cut, as when it fails over).
    pub fn stop(&self) {
        self.pg_ctl(&["-m", "fast", "-w", "stop"]);
    }

    /// Starts it again, on the same port.
    pub fn restart(&self) {
        start_postgres(&self.dir, self.port);
    }
}

impl Drop for Restartable {
    fn drop(&mut self) {
        let _ = as_owner(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "stop"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
