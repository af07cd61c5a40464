//! The attacker's side of the flood tests and benchmark: many connections that never send a
//! byte, a client that trickles its request head a byte a second, and one ordinary timed
//! exchange. Every listener's flood test uses these, so each attacks the same way; with them,
//! [`raise_nofile`](crate::raise_nofile) for the descriptors they hold.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// Connections opened at once by [`idle`].
const AT_ONCE: usize = 256;

/// Opens `n` connections to `addr` that send nothing; they stay open as long as the returned
/// streams live (or until the server closes them). Fails on the first connection that cannot
/// be opened within 10 s.
pub async fn idle(addr: SocketAddr, n: usize) -> io::Result<Vec<TcpStream>> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let batch = (n - out.len()).min(AT_ONCE);
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..batch {
            set.spawn(tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr)));
        }
        while let Some(r) = set.join_next().await {
            match r {
                Ok(Ok(Ok(s))) => out.push(s),
                Ok(Ok(Err(e))) => return Err(e),
                Ok(Err(_)) => return Err(io::Error::new(io::ErrorKind::TimedOut, "connect took over 10 s")),
                Err(e) => return Err(io::Error::other(e)),
            }
        }
    }
    Ok(out)
}

/// What the byte-a-second client saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trickled {
    /// Bytes of its request head it got to send.
    pub sent: usize,
    /// What came back before the connection closed (nothing, when it was cut off).
    pub answer: String,
}

/// A client that sends `head` one byte a second (slowloris), then reads what comes back; the
/// task ends when the server closes the connection or the head is all sent and answered.
pub fn trickle(addr: SocketAddr, head: &'static [u8]) -> JoinHandle<io::Result<Trickled>> {
    tokio::spawn(async move {
        let mut s = TcpStream::connect(addr).await?;
        let mut sent = 0;
        let mut buf = [0u8; 512];
        for b in head {
            if s.write_all(std::slice::from_ref(b)).await.is_err() {
                break;
            }
            sent += 1;
            // A close (or an answer) shows at once; otherwise the next byte comes a second later.
            match tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await {
                Err(_) => {}
                Ok(Ok(0)) | Ok(Err(_)) => return Ok(Trickled { sent, answer: String::new() }),
                Ok(Ok(n)) => {
                    return Ok(Trickled { sent, answer: String::from_utf8_lossy(&buf[..n]).into_owned() });
                }
            }
        }
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest).await;
        Ok(Trickled { sent, answer: String::from_utf8_lossy(&rest).into_owned() })
    })
}

/// One ordinary client: connects, sends `request` (which should ask for `Connection: close`),
/// and reads the answer until the server closes, within `limit`. Returns the time from connect
/// to the end of the answer, and the answer (empty when none came in time).
pub async fn ask(addr: SocketAddr, request: &[u8], limit: Duration) -> io::Result<(Duration, String)> {
    let t = Instant::now();
    let exchange = async {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(request).await?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await?;
        Ok::<_, io::Error>(out)
    };
    match tokio::time::timeout(limit, exchange).await {
        Ok(Ok(out)) => Ok((t.elapsed(), String::from_utf8_lossy(&out).into_owned())),
        Ok(Err(e)) => Err(e),
        Err(_) => Ok((t.elapsed(), String::new())),
    }
}
