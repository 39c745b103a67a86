//! The registration protocol between a function process and the control
//! plane, over a unix stream socket.
//!
//! ```text
//! function -> control: HELLO <chain-name> <function-id> <pid>\n
//! control -> function: WELCOME transport=<t> chain=<n> lease=<l> fds=<k> [service_ms=<ms> service_mode=<m>]\n
//!                      + SCM_RIGHTS [pool, transport fds...]
//!                   or REFUSED <reason>\n
//! ```
//!
//! The control plane puts the function's socket in SPROXY's map *before* it
//! answers, so the function cannot be blocked in `recv` on a socket that is
//! not yet in the map (that thread would never see redirected data). The
//! connection then stays open: its EOF tells the control plane the function
//! is gone, and tells the function that the control plane is gone.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use crate::descriptor::ChainId;
use crate::pool::Lease;
use crate::service_time::{ServiceMode, ServiceTime};
use crate::sys;
use crate::transport::TransportKind;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub chain: String,
    pub function: u16,
    pub pid: u32,
}

#[derive(Debug)]
pub struct Welcome {
    pub transport: TransportKind,
    pub chain: ChainId,
    pub lease: Lease,
    pub fds: Vec<OwnedFd>,
    /// The service time to emulate (after the CLI's override).
    pub service_time: Option<ServiceTime>,
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Reads one `\n`-terminated line, collecting any fds sent along with it.
fn read_line(sock: &UnixStream) -> io::Result<(String, Vec<OwnedFd>)> {
    let mut line = Vec::new();
    let mut fds = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        let (n, mut got) = sys::recv_with_fds(sock, &mut buf)?;
        fds.append(&mut got);
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "registration connection closed"));
        }
        line.extend_from_slice(&buf[..n]);
        if let Some(end) = line.iter().position(|&b| b == b'\n') {
            line.truncate(end);
            let text = String::from_utf8(line).map_err(|_| bad("registration message is not UTF-8"))?;
            return Ok((text, fds));
        }
        if line.len() > 4096 {
            return Err(bad("registration message too long"));
        }
    }
}

impl Hello {
    pub fn send(&self, sock: &UnixStream) -> io::Result<()> {
        sys::send_with_fds(sock, format!("HELLO {} {} {}\n", self.chain, self.function, self.pid).as_bytes(), &[])
    }

    pub fn recv(sock: &UnixStream) -> io::Result<Self> {
        let (line, _) = read_line(sock)?;
        let mut it = line.split(' ');
        match (it.next(), it.next(), it.next(), it.next(), it.next()) {
            (Some("HELLO"), Some(chain), Some(f), Some(pid), None) => Ok(Self {
                chain: chain.to_string(),
                function: f.parse().map_err(|_| bad(format!("bad function id {f:?}")))?,
                pid: pid.parse().map_err(|_| bad(format!("bad pid {pid:?}")))?,
            }),
            _ => Err(bad(format!("expected HELLO, got {line:?}"))),
        }
    }
}

/// Sends the welcome with the function's fds.
pub fn send_welcome(
    sock: &UnixStream,
    transport: TransportKind,
    chain: ChainId,
    lease: Lease,
    service_time: Option<ServiceTime>,
    fds: &[std::os::fd::RawFd],
) -> io::Result<()> {
    let mut text = format!("WELCOME transport={} chain={} lease={} fds={}", transport, chain.0, lease.0, fds.len());
    if let Some(st) = service_time {
        text.push_str(&format!(" service_ms={} service_mode={}", st.ms, st.mode));
    }
    text.push('\n');
    sys::send_with_fds(sock, text.as_bytes(), fds)
}

pub fn send_refusal(sock: &UnixStream, reason: &str) -> io::Result<()> {
    sys::send_with_fds(sock, format!("REFUSED {}\n", reason.replace('\n', " ")).as_bytes(), &[])
}

impl Welcome {
    pub fn recv(sock: &UnixStream) -> io::Result<Self> {
        let (line, fds) = read_line(sock)?;
        if let Some(reason) = line.strip_prefix("REFUSED ") {
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, format!("control plane refused registration: {reason}")));
        }
        let rest = line.strip_prefix("WELCOME ").ok_or_else(|| bad(format!("expected WELCOME, got {line:?}")))?;
        let (mut transport, mut chain, mut lease, mut count) = (None, None, None, None);
        let (mut service_ms, mut service_mode) = (None, ServiceMode::default());
        for kv in rest.split(' ') {
            match kv.split_once('=') {
                Some(("transport", v)) => transport = Some(v.parse::<TransportKind>().map_err(bad)?),
                Some(("chain", v)) => chain = v.parse().ok().map(ChainId),
                Some(("lease", v)) => lease = v.parse().ok().map(Lease),
                Some(("fds", v)) => count = v.parse::<usize>().ok(),
                Some(("service_ms", v)) => service_ms = Some(v.parse::<f64>().map_err(|_| bad(format!("bad service_ms {v:?}")))?),
                Some(("service_mode", v)) => service_mode = v.parse().map_err(bad)?,
                _ => return Err(bad(format!("unexpected field {kv:?} in WELCOME"))),
            }
        }
        let count = count.ok_or_else(|| bad("WELCOME without fds="))?;
        if fds.len() != count {
            return Err(bad(format!("WELCOME announced {count} fds, received {}", fds.len())));
        }
        Ok(Self {
            transport: transport.ok_or_else(|| bad("WELCOME without transport"))?,
            chain: chain.ok_or_else(|| bad("WELCOME without chain"))?,
            lease: lease.ok_or_else(|| bad("WELCOME without lease"))?,
            fds,
            service_time: service_ms.map(|ms| ServiceTime { ms, mode: service_mode }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsFd, AsRawFd};

    #[test]
    fn hello_and_welcome_round_trip_with_fds() {
        let (a, b) = UnixStream::pair().unwrap();
        let hello = Hello { chain: "c".into(), function: 3, pid: 42 };
        hello.send(&a).unwrap();
        assert_eq!(Hello::recv(&b).unwrap(), hello);
        let f = crate::sys::memfd("t", 4096, false).unwrap();
        let st = Some(ServiceTime { ms: 4.35, mode: ServiceMode::Spin });
        send_welcome(&b, TransportKind::Eventring, ChainId(2), Lease(9), st, &[f.as_fd().as_raw_fd(), f.as_raw_fd()]).unwrap();
        let w = Welcome::recv(&a).unwrap();
        assert_eq!((w.transport, w.chain, w.lease, w.fds.len()), (TransportKind::Eventring, ChainId(2), Lease(9), 2));
        assert_eq!(w.service_time, st);
        send_refusal(&b, "no such function").unwrap();
        assert!(Welcome::recv(&a).unwrap_err().to_string().contains("no such function"));
    }
}
