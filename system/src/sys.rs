//! Thin, safe wrappers over the few Linux calls std does not offer:
//! memfd, shared mappings, eventfd and SCM_RIGHTS fd passing.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::ptr::NonNull;

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Creates an anonymous memory file of `len` bytes (`MFD_HUGETLB` when asked).
pub fn memfd(name: &str, len: usize, hugetlb: bool) -> io::Result<OwnedFd> {
    let cname = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut flags = libc::MFD_CLOEXEC;
    if hugetlb {
        flags |= libc::MFD_HUGETLB;
    } else {
        flags |= libc::MFD_ALLOW_SEALING;
    }
    // SAFETY: valid C string; the returned fd is owned by us.
    let fd = cvt(unsafe { libc::memfd_create(cname.as_ptr(), flags) })?;
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    cvt(unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) })?;
    if !hugetlb {
        // Functions map the pool too: forbid resizing it under the others
        // (a shrink would SIGBUS every process that maps it).
        // SAFETY: fcntl on a memfd we own; sealing touches no memory of ours.
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, libc::F_SEAL_GROW | libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL) };
    }
    Ok(fd)
}

/// Size of the file behind `fd`.
pub fn fd_size(fd: RawFd) -> io::Result<usize> {
    // SAFETY: libc::stat is plain data; all-zero is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat writes one struct stat into `st`, which we own.
    cvt(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(st.st_size as usize)
}

/// A `MAP_SHARED` read-write mapping, unmapped on drop.
#[derive(Debug)]
pub struct SharedMapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; synchronisation is the
// business of the types laid over it (atomics in headers, slot ownership).
unsafe impl Send for SharedMapping {}
unsafe impl Sync for SharedMapping {}

impl SharedMapping {
    pub fn map(fd: RawFd, len: usize) -> io::Result<Self> {
        // SAFETY: fresh mapping of a file we hold; checked for MAP_FAILED.
        let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, 0) };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { ptr: NonNull::new(ptr.cast()).expect("mmap returned null"), len })
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for SharedMapping {
    fn drop(&mut self) {
        // SAFETY: ptr/len are the mapping we made; nothing borrows it once we are dropped.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// A counting eventfd used as a doorbell.
pub fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: eventfd takes integers and returns a new fd (checked by cvt).
    let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) })?;
    // SAFETY: fd was just returned by eventfd and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub fn eventfd_ring(fd: RawFd) -> io::Result<()> {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a local u64.
    let n = unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
    if n == 8 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Blocks until the eventfd is rung; returns the accumulated count.
pub fn eventfd_wait(fd: RawFd) -> io::Result<u64> {
    let mut v: u64 = 0;
    loop {
        // SAFETY: reads at most 8 bytes into a local u64.
        let n = unsafe { libc::read(fd, (&mut v as *mut u64).cast(), 8) };
        if n == 8 {
            return Ok(v);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

const MAX_PASSED_FDS: usize = 64;

/// Sends `data` with `fds` attached (SCM_RIGHTS) in one message.
pub fn send_with_fds(sock: &UnixStream, data: &[u8], fds: &[RawFd]) -> io::Result<()> {
    assert!(fds.len() <= MAX_PASSED_FDS, "too many fds in one message");
    let mut iov = libc::iovec { iov_base: data.as_ptr() as *mut _, iov_len: data.len() };
    // SAFETY: CMSG_SPACE is arithmetic on its argument.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of_val(fds) as u32) } as usize;
    let mut cbuf = vec![0u8; space.max(1)];
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = space;
        // SAFETY: the control buffer is CMSG_SPACE bytes for fds.len() fds.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of_val(fds) as u32) as usize;
            std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(cmsg).cast(), fds.len());
        }
    }
    // SAFETY: msg points at the local iovec and control buffer, which outlive the call.
    let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    if n as usize != data.len() {
        return Err(io::Error::new(io::ErrorKind::WriteZero, "short sendmsg with fds"));
    }
    Ok(())
}

/// Receives one message (up to `buf.len()` bytes) and the fds attached to it.
pub fn recv_with_fds(sock: &UnixStream, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: CMSG_SPACE is arithmetic on its argument.
    let space = unsafe { libc::CMSG_SPACE((MAX_PASSED_FDS * std::mem::size_of::<RawFd>()) as u32) } as usize;
    let mut cbuf = vec![0u8; space];
    // SAFETY: msghdr is plain data (null pointers, zero lengths) until filled below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = space;
    // SAFETY: msg points at the local buffers sized above; the kernel writes within their lengths.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut fds = Vec::new();
    // SAFETY: walking the control messages the kernel filled in.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data_len = (*cmsg).cmsg_len - libc::CMSG_LEN(0) as usize;
                let count = data_len / std::mem::size_of::<RawFd>();
                let p = libc::CMSG_DATA(cmsg) as *const RawFd;
                for i in 0..count {
                    fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(p.add(i))));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "fds truncated (MSG_CTRUNC)"));
    }
    Ok((n as usize, fds))
}

/// Number of huge pages currently reserved (`/proc/sys/vm/nr_hugepages`).
pub fn reserved_huge_pages() -> u64 {
    std::fs::read_to_string("/proc/sys/vm/nr_hugepages").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

/// Asks the kernel to SIGKILL this process when its parent dies, so a
/// crashed control plane never leaves functions behind.
pub fn die_with_parent() {
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
}

/// The CPUs this process may run on.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: an all-zero cpu_set_t is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: writes one cpu_set_t into `set`, which we own.
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) } != 0 {
        return (0..std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)).collect();
    }
    // SAFETY: CPU_ISSET reads `set` within CPU_SETSIZE bits.
    (0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) }).collect()
}

/// The (pid, uid) of the process at the other end of a unix socket.
pub fn peer_credentials(sock: &UnixStream) -> io::Result<(u32, u32)> {
    // SAFETY: ucred is plain integers; zero is valid.
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cred`, which we own.
    cvt(unsafe {
        libc::getsockopt(sock.as_raw_fd(), libc::SOL_SOCKET, libc::SO_PEERCRED, (&mut cred as *mut libc::ucred).cast(), &mut len)
    })?;
    Ok((cred.pid as u32, cred.uid))
}

/// A process handle that outlives pid reuse (Linux pidfd).
#[derive(Debug)]
pub struct Pidfd(OwnedFd);

impl Pidfd {
    /// The process at the other end of a unix socket: `SO_PEERPIDFD`
    /// (Linux 6.5+) names the very process that connected, not whoever has
    /// its pid now; older kernels fall back to `pidfd_open` of its pid.
    pub fn of_peer(sock: &UnixStream) -> io::Result<Self> {
        const SO_PEERPIDFD: libc::c_int = 77;
        let mut fd: libc::c_int = -1;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `fd`, which we own.
        let r =
            unsafe { libc::getsockopt(sock.as_raw_fd(), libc::SOL_SOCKET, SO_PEERPIDFD, (&mut fd as *mut libc::c_int).cast(), &mut len) };
        if r == 0 && fd >= 0 {
            // SAFETY: the kernel just gave us this fd; nobody else owns it.
            return Ok(Self(unsafe { OwnedFd::from_raw_fd(fd) }));
        }
        let (pid, _) = peer_credentials(sock)?;
        if pid == 0 {
            return Err(io::Error::other("the peer's process is not visible in our pid namespace"));
        }
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let fd = cvt(unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::c_long, 0 as libc::c_long) } as libc::c_int)?;
        // SAFETY: as above.
        Ok(Self(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Waits up to `timeout` for the process to exit (every thread of it:
    /// its memory is gone); true once it has.
    pub fn wait_exit(&self, timeout: std::time::Duration) -> bool {
        let mut p = libc::pollfd { fd: self.0.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        loop {
            // SAFETY: one pollfd we own.
            match unsafe { libc::poll(&mut p, 1, ms) } {
                -1 if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => continue,
                n => return n > 0,
            }
        }
    }

    /// Sends SIGKILL to the process (not to whoever reuses its pid).
    pub fn kill(&self) -> io::Result<()> {
        // SAFETY: pidfd_send_signal(fd, sig, NULL, 0) reads nothing of ours.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.0.as_raw_fd() as libc::c_long,
                libc::SIGKILL as libc::c_long,
                0 as libc::c_long,
                0 as libc::c_long,
            )
        };
        cvt(r as libc::c_int).map(drop)
    }
}

/// Connects to a unix socket given as a path or, with a leading `@`, as an
/// abstract name (which vanishes with its listener: nothing to clean up).
pub fn unix_connect(addr: &str) -> io::Result<UnixStream> {
    match addr.strip_prefix('@') {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            UnixStream::connect_addr(&std::os::unix::net::SocketAddr::from_abstract_name(name)?)
        }
        None => UnixStream::connect(addr),
    }
}

/// Binds a unix listener (see [`unix_connect`] for the `@` form).
pub fn unix_listen(addr: &str) -> io::Result<std::os::unix::net::UnixListener> {
    match addr.strip_prefix('@') {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::UnixListener::bind_addr(&std::os::unix::net::SocketAddr::from_abstract_name(name)?)
        }
        None => std::os::unix::net::UnixListener::bind(addr),
    }
}
