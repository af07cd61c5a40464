//! The log-in's defences, in the order a log-in meets them: the client's address
//! (`http_shell::forwarded::client_address`: `X-Forwarded-For` only when the connection comes
//! from a trusted proxy), failed attempts
//! counted per subscriber id and per client before any password is hashed ([`Attempts`]), and a
//! cap on the Argon2 hashes computed at once ([`HashGate`]), whose excess is answered at once
//! rather than queued.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_shell::forwarded::canonical;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The key a client's failures are counted under: its IPv4 address, or its IPv6 /64 (one
/// subscriber's line gets a whole /64, so counting single IPv6 addresses would count nothing).
pub fn client_key(a: IpAddr) -> String {
    match canonical(a) {
        IpAddr::V4(v4) => format!("client:{v4}"),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("client:{}/64", Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    }
}

/// Failed log-ins within a window, per subscriber id and per client.
///
/// An attempt is counted when it starts, before its password is hashed ([`Attempts::begin`]),
/// and uncounted only when it succeeds or is turned away unchecked. So a storm of concurrent
/// attempts cannot all pass the check while the first ones are still hashing: at most the limit
/// of them is ever hashed, the rest are refused without any work.
pub struct Attempts {
    window: Duration,
    max_per_user: usize,
    max_per_client: usize,
    book: Mutex<Book>,
}

/// The marks of attempts within the window, by key, and when old ones were last dropped.
struct Book {
    marks: HashMap<String, Vec<Instant>>,
    pruned: Instant,
}

/// How often [`Attempts::begin`] drops the marks that left the window (a refused storm calls it
/// thousands of times a second; the map need not be walked for each).
const PRUNE_EVERY: Duration = Duration::from_secs(1);

/// One attempt counted by [`Attempts::begin`]. Dropped as it is, it stays counted (a failure,
/// or a client that went away mid-check); [`Attempt::succeeded`] and [`Attempt::unchecked`]
/// take it back.
pub struct Attempt<'a> {
    attempts: &'a Attempts,
    keys: [String; 2],
    at: Instant,
}

impl Attempts {
    /// `max_per_user` attempts per subscriber id and `max_per_client` per client within `window`.
    pub fn new(window: Duration, max_per_user: usize, max_per_client: usize) -> Attempts {
        let book = Book { marks: HashMap::new(), pruned: Instant::now() };
        Attempts { window, max_per_user, max_per_client, book: Mutex::new(book) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts an attempt of `user` from the client keyed `client` (see [`client_key`]); or, when
    /// either already has its limit of attempts within the window, counts nothing and returns
    /// the seconds until the oldest of them leaves the window.
    pub fn begin(&self, user: &str, client: &str) -> Result<Attempt<'_>, u64> {
        let now = Instant::now();
        let window = self.window;
        let in_window = |t: &Instant| now.saturating_duration_since(*t) < window;
        let mut book = self.lock();
        // Old marks go, so the map cannot grow without bound.
        if now.saturating_duration_since(book.pruned) >= PRUNE_EVERY {
            book.marks.retain(|_, l| {
                l.retain(in_window);
                !l.is_empty()
            });
            book.pruned = now;
        }
        let keys = [format!("user:{user}"), client.to_string()];
        for (key, max) in keys.iter().zip([self.max_per_user, self.max_per_client]) {
            if let Some(l) = book.marks.get_mut(key) {
                l.retain(in_window);
                if l.len() >= max.max(1) {
                    let oldest = l.iter().min().copied().unwrap_or(now);
                    return Err(window.saturating_sub(now.saturating_duration_since(oldest)).as_secs().max(1));
                }
            }
        }
        for key in &keys {
            book.marks.entry(key.clone()).or_default().push(now);
        }
        Ok(Attempt { attempts: self, keys, at: now })
    }

    /// Attempts counted now for `key` (`user:ID` or a [`client_key`]).
    #[cfg(test)]
    fn count(&self, key: &str) -> usize {
        self.lock().marks.get(key).map_or(0, Vec::len)
    }
}

impl Attempt<'_> {
    /// The password was right: the attempt is not a failure.
    pub fn succeeded(self) {
        self.take_back();
    }

    /// The attempt was turned away before its password was checked (no hash slot).
    pub fn unchecked(self) {
        self.take_back();
    }

    fn take_back(&self) {
        let mut book = self.attempts.lock();
        for key in &self.keys {
            if let Some(l) = book.marks.get_mut(key) {
                if let Some(i) = l.iter().position(|t| *t == self.at) {
                    l.swap_remove(i);
                }
                if l.is_empty() {
                    book.marks.remove(key);
                }
            }
        }
    }
}

/// At most `at_once` password hashes computed at once, and at most `waiting` more log-ins
/// waiting for one; a log-in beyond both is turned away at once ([`HashGate::enter`] gives
/// `None`) and answered 503 with `Retry-After`, so a storm costs the host a bounded amount of
/// CPU and memory (an Argon2id hash takes 19 MiB) and no request waits for long.
#[derive(Clone)]
pub struct HashGate {
    admitted: Arc<Semaphore>,
    hashing: Arc<Semaphore>,
}

/// A log-in let through [`HashGate::enter`]: it may wait for a hashing slot.
pub struct Admitted {
    _admitted: OwnedSemaphorePermit,
    hashing: Arc<Semaphore>,
}

impl HashGate {
    /// `at_once` hashes at a time (at least one) and `waiting` log-ins in line for them.
    pub fn new(at_once: usize, waiting: usize) -> HashGate {
        let at_once = at_once.max(1);
        HashGate { admitted: Arc::new(Semaphore::new(at_once + waiting)), hashing: Arc::new(Semaphore::new(at_once)) }
    }

    /// A place among the hashing and waiting log-ins, or `None` when all are taken.
    pub fn enter(&self) -> Option<Admitted> {
        let admitted = self.admitted.clone().try_acquire_owned().ok()?;
        Some(Admitted { _admitted: admitted, hashing: self.hashing.clone() })
    }
}

impl Admitted {
    /// Runs `check` (the password hash) on the blocking pool once a hashing slot is free.
    pub async fn hash<T: Send + 'static>(
        self,
        check: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, tokio::task::JoinError> {
        // The semaphore is never closed.
        let slot = self.hashing.clone().acquire_owned().await.ok();
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            check()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        assert_eq!(client_key(ip("2001:db8:1:2:aaaa::1")), client_key(ip("2001:db8:1:2:bbbb::9")));
        assert_ne!(client_key(ip("2001:db8:1:2::1")), client_key(ip("2001:db8:1:3::1")));
        assert_eq!(client_key(ip("::ffff:192.0.2.1")), "client:192.0.2.1");
    }

    #[test]
    fn attempts_are_counted_before_the_check_and_taken_back_on_success() {
        let a = Attempts::new(Duration::from_secs(300), 3, 4);
        // Three attempts at once, none finished yet: the fourth is refused without a check.
        let held: Vec<_> = (0..3).map(|_| a.begin("alice", "client:192.0.2.1").expect("under the limit")).collect();
        assert!(a.begin("alice", "client:192.0.2.1").is_err(), "a fourth concurrent attempt was let through");
        assert!(a.begin("alice", "client:192.0.2.9").is_err(), "another client dodged the subscriber's limit");
        // The client's own limit (4) with another subscriber's id.
        let bob = a.begin("bob", "client:192.0.2.1").expect("the client's fourth");
        let wait = a.begin("carol", "client:192.0.2.1").err().expect("the client's fifth is refused");
        assert!((1..=300).contains(&wait), "{wait}");
        // A success and an unchecked attempt are taken back; failures stay.
        bob.succeeded();
        assert_eq!(a.count("user:bob"), 0);
        let carol = a.begin("carol", "client:192.0.2.1").expect("room again");
        carol.unchecked();
        assert_eq!(a.count("client:192.0.2.1"), 3);
        drop(held);
        assert_eq!(a.count("user:alice"), 3);
        assert!(a.begin("alice", "client:192.0.2.2").is_err());
    }

    #[test]
    fn the_hash_gate_turns_away_what_it_cannot_hold() {
        let gate = HashGate::new(1, 2);
        let held: Vec<_> = (0..3).map(|_| gate.enter().expect("a place")).collect();
        assert!(gate.enter().is_none(), "a fourth log-in was let in line");
        drop(held);
        assert!(gate.enter().is_some(), "places came back");
    }

    #[tokio::test]
    async fn admitted_log_ins_hash_one_at_a_time() {
        let gate = HashGate::new(1, 5);
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..6 {
            let (admitted, running, most) = (gate.enter().expect("a place"), running.clone(), most.clone());
            set.spawn(admitted.hash(move || {
                use std::sync::atomic::Ordering::SeqCst;
                let now = running.fetch_add(1, SeqCst) + 1;
                most.fetch_max(now, SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                running.fetch_sub(1, SeqCst);
            }));
        }
        while let Some(r) = set.join_next().await {
            r.expect("join").expect("hash");
        }
        assert_eq!(most.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
