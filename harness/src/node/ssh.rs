//! Reaching a node over SSH: `ssh://USER@HOST[:PORT]`, with the keys and
//! host keys the Ansible roles install. No service of our own listens on
//! the node; the session is one `ssh` process whose stdio carries the
//! node protocol, and whose end ends the node's session.

use std::net::{IpAddr, ToSocketAddrs};
use std::path::Path;
use std::process::Command;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshTarget {
    pub user: String,
    pub host: String,
    pub port: Option<u16>,
}

impl SshTarget {
    pub fn parse(url: &str) -> Result<Self, String> {
        let bad = || format!("{url:?}: expected ssh://USER@HOST or ssh://USER@HOST:PORT");
        let rest = url.strip_prefix("ssh://").ok_or_else(bad)?;
        let (user, host_port) = rest.split_once('@').ok_or_else(bad)?;
        let (host, port) = match host_port.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p.parse().map_err(|_| bad())?)),
            _ => (host_port, None),
        };
        if user.is_empty() || host.is_empty() || !host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)) {
            return Err(bad());
        }
        Ok(Self { user: user.into(), host: host.into(), port })
    }

    /// The host's address (the load targets it unless told otherwise).
    pub fn ip(&self) -> Result<IpAddr, String> {
        (self.host.as_str(), 22)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {}: {e}", self.host))?
            .map(|a| a.ip())
            .find(IpAddr::is_ipv4)
            .ok_or_else(|| format!("{} has no IPv4 address", self.host))
    }

    /// `ssh` running `harness node --stdio` there. Never prompts (batch
    /// mode: keys only); a dead link is noticed within about 15 s.
    pub fn node_command(&self, remote_harness: &str, config: Option<&Path>) -> Command {
        let mut cmd = Command::new("ssh");
        if let Some(f) = config {
            cmd.arg("-F").arg(f);
        }
        cmd.args(["-o", "BatchMode=yes", "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3", "-T"]);
        if let Some(p) = self.port {
            cmd.args(["-p", &p.to_string()]);
        }
        cmd.arg(format!("{}@{}", self.user, self.host)).args(["--", remote_harness, "node", "--stdio"]);
        cmd
    }
}

impl std::fmt::Display for SshTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "ssh://{}@{}", self.user, self.host)?;
        match self.port {
            Some(p) => write!(f, ":{p}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_bad_ones_are_refused() {
        assert_eq!(
            SshTarget::parse("ssh://spright@node-0:2222").unwrap(),
            SshTarget { user: "spright".into(), host: "node-0".into(), port: Some(2222) }
        );
        assert_eq!(SshTarget::parse("ssh://root@10.0.0.1").unwrap().port, None);
        for bad in ["node-0", "ssh://node-0", "ssh://@node-0", "ssh://u@", "ssh://u@h:x", "ssh://u@h;rm -rf"] {
            assert!(SshTarget::parse(bad).is_err(), "{bad}");
        }
        let cmd = SshTarget::parse("ssh://u@h:22").unwrap().node_command("/opt/spright/bin/harness", None);
        let args: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into()).collect();
        assert!(
            args.ends_with(&["u@h".into(), "--".into(), "/opt/spright/bin/harness".into(), "node".into(), "--stdio".into()]),
            "{args:?}"
        );
        assert!(args.windows(2).any(|w| w == ["-o", "BatchMode=yes"]));
    }
}
