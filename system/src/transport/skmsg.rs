//! S-SPRIGHT delivery: one loopback TCP socket per endpoint, registered in
//! SPROXY's sockmap by the control plane before the endpoint may read it.
//!
//! Sending is one `send` of exactly one descriptor on the endpoint's own
//! socket (SPROXY gives one verdict per `sendmsg`); the kernel redirects it
//! into the destination socket's receive queue. Receiving blocks in `recv`,
//! so an idle endpoint costs no CPU (no timeout: `shutdown` wakes it). The stream is reassembled with
//! [`FrameDecoder`] because redirected messages coalesce and split.

use std::io;
use std::net::TcpStream;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use zerocopy::IntoBytes;

use super::{Closer, DescriptorRx, DescriptorTx, Link, TransportError};
use crate::descriptor::{Descriptor, FrameDecoder, DESCRIPTOR_SIZE};

struct Shared {
    sock: TcpStream,
    closed: AtomicBool,
}

struct Tx(Arc<Shared>);
struct Rx {
    shared: Arc<Shared>,
    buf: Box<[u8; 64 * DESCRIPTOR_SIZE]>,
    decoder: FrameDecoder,
}
struct Close(Arc<Shared>);

/// Builds the link of an endpoint from its registered socket.
pub fn link(sock: OwnedFd) -> io::Result<Link> {
    let sock = TcpStream::from(sock);
    sock.set_nodelay(true)?;
    let shared = Arc::new(Shared { sock, closed: AtomicBool::new(false) });
    Ok(Link {
        tx: Arc::new(Tx(shared.clone())),
        rx: Box::new(Rx { shared: shared.clone(), buf: Box::new([0; 64 * DESCRIPTOR_SIZE]), decoder: FrameDecoder::default() }),
        closer: Arc::new(Close(shared)),
    })
}

impl DescriptorTx for Tx {
    fn send(&self, d: &Descriptor) -> Result<(), TransportError> {
        let bytes = d.as_bytes();
        loop {
            // SAFETY: plain send of a 16-byte buffer on a socket we own.
            let n = unsafe { libc::send(self.0.sock.as_raw_fd(), bytes.as_ptr().cast(), bytes.len(), libc::MSG_NOSIGNAL) };
            if n == bytes.len() as isize {
                return Ok(());
            }
            if n >= 0 {
                // The remainder would get its own verdict as a garbled
                // descriptor; a short send is an error, never retried.
                return Err(TransportError::ShortSend(n as usize));
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err.into());
            }
        }
    }
}

impl DescriptorRx for Rx {
    fn recv(&mut self, out: &mut Vec<Descriptor>) -> Result<(), TransportError> {
        let start = out.len();
        while out.len() == start {
            if self.shared.closed.load(Ordering::Acquire) {
                return Err(TransportError::Closed);
            }
            // SAFETY: recv writes at most buf.len() bytes into our own buffer; the socket fd stays open while self lives.
            let n = unsafe { libc::recv(self.shared.sock.as_raw_fd(), self.buf.as_mut_ptr().cast(), self.buf.len(), 0) };
            if n == 0 {
                return Err(TransportError::Closed);
            }
            if n < 0 {
                let err = io::Error::last_os_error();
                match err.kind() {
                    io::ErrorKind::Interrupted => continue,
                    // tcp_bpf answers EAGAIN to a reader woken by shutdown.
                    io::ErrorKind::WouldBlock if self.shared.closed.load(Ordering::Acquire) => return Err(TransportError::Closed),
                    io::ErrorKind::WouldBlock => continue,
                    _ => return Err(err.into()),
                }
            }
            self.decoder.feed(&self.buf[..n as usize], out);
        }
        Ok(())
    }
}

impl Closer for Close {
    fn close(&self) {
        self.0.closed.store(true, Ordering::Release);
        let _ = self.0.sock.shutdown(std::net::Shutdown::Both);
    }
}
