//! Two nodes on one machine: node-0 and node-1 are network namespaces
//! joined by a veth pair; node-0 runs a real `sshd` (key authentication
//! only), node-1 runs the experiment driver with `--sut ssh://...`, so the
//! load crosses the veth link to node-0's front door and node-0 is driven
//! through `harness node --stdio` over SSH - the same protocol a local run
//! speaks over a socket pair. Everything the test makes is removed
//! afterwards, also when it fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn ip(args: &[&str]) {
    run(Command::new("ip").args(args));
}

/// Two namespaces, a veth pair, an sshd in node-0; torn down on drop.
struct TwoHosts {
    ns: [String; 2],
    addr: [String; 2],
    dir: PathBuf,
    sshd: Option<Child>,
    port: u16,
    made_run_sshd: bool,
}

impl TwoHosts {
    fn new() -> Self {
        let id = std::process::id();
        let net = 16 + id % 200;
        let dir = std::env::temp_dir().join(format!("harness-two-nodes-{id}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut hosts = Self {
            ns: [format!("spr-n0-{id}"), format!("spr-n1-{id}")],
            addr: [format!("10.231.{net}.1"), format!("10.231.{net}.2")],
            dir,
            sshd: None,
            port: 2222,
            made_run_sshd: false,
        };
        let veth = [format!("spr0-{}", id % 100_000), format!("spr1-{}", id % 100_000)];
        for ns in &hosts.ns {
            ip(&["netns", "add", ns]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        ip(&["link", "add", &veth[0], "netns", &hosts.ns[0], "type", "veth", "peer", "name", &veth[1], "netns", &hosts.ns[1]]);
        for ((ns, addr), veth) in hosts.ns.iter().zip(&hosts.addr).zip(&veth) {
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", veth]);
            ip(&["-n", ns, "link", "set", veth, "up"]);
        }
        hosts.start_sshd();
        hosts
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn start_sshd(&mut self) {
        for key in ["host", "client"] {
            run(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", key, "-f"]).arg(self.path(key)));
        }
        std::fs::copy(self.path("client.pub"), self.path("authorized_keys")).unwrap();
        let host_pub = std::fs::read_to_string(self.path("host.pub")).unwrap();
        let host_key: Vec<&str> = host_pub.split_whitespace().take(2).collect();
        std::fs::write(self.path("known_hosts"), format!("[{}]:{} {}\n", self.addr[0], self.port, host_key.join(" "))).unwrap();
        let d = self.dir.display();
        std::fs::write(
            self.path("sshd_config"),
            format!(
                "ListenAddress {}:{}\nHostKey {d}/host\nAuthorizedKeysFile {d}/authorized_keys\nPidFile {d}/sshd.pid\n\
                 PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 UsePAM no\nStrictModes no\nAllowTcpForwarding no\nX11Forwarding no\n",
                self.addr[0], self.port
            ),
        )
        .unwrap();
        std::fs::write(
            self.path("ssh_config"),
            format!(
                "Host *\n  IdentityFile {d}/client\n  IdentitiesOnly yes\n  UserKnownHostsFile {d}/known_hosts\n  \
                 StrictHostKeyChecking yes\n  ConnectTimeout 10\n"
            ),
        )
        .unwrap();
        // sshd's privilege-separation directory, as its package makes it.
        if !Path::new("/run/sshd").exists() {
            std::fs::create_dir_all("/run/sshd").unwrap();
            self.made_run_sshd = true;
        }
        let sshd = Command::new("ip")
            .args(["netns", "exec", &self.ns[0], "/usr/sbin/sshd", "-D", "-e", "-f"])
            .arg(self.path("sshd_config"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("sshd (Debian's openssh-server) must be installed");
        self.sshd = Some(sshd);
        // Up when a command goes through.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = self.ssh(&["true"]).output().unwrap();
            if out.status.success() {
                return;
            }
            assert!(Instant::now() < deadline, "sshd in {} never let us in: {}", self.ns[0], String::from_utf8_lossy(&out.stderr));
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `ssh` from node-1 to node-0.
    fn ssh(&self, remote: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns[1], "ssh", "-F"]).arg(self.path("ssh_config"));
        cmd.args(["-o", "BatchMode=yes", "-p", &self.port.to_string(), &format!("root@{}", self.addr[0])]).args(remote);
        cmd
    }
}

impl Drop for TwoHosts {
    fn drop(&mut self) {
        if let Some(mut sshd) = self.sshd.take() {
            let _ = sshd.kill();
            let _ = sshd.wait();
        }
        for ns in &self.ns {
            // Deleting a namespace deletes its end of the veth pair, and so the pair.
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        if self.made_run_sshd {
            let _ = std::fs::remove_dir("/run/sshd");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn a_run_drives_node_0_over_ssh_while_the_load_runs_on_node_1() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "namespaces, sshd and eBPF need root; run the tests as root");
    let hosts = TwoHosts::new();
    let harness = env!("CARGO_BIN_EXE_harness");
    let out_dir = hosts.path("run");
    let target = format!("ssh://root@{}:{}", hosts.addr[0], hosts.port);
    let out = run(Command::new("ip")
        .args(["netns", "exec", &hosts.ns[1], harness, "experiment", "boutique", "--modes", "s-spright,knative"])
        .args(["--profile", "smoke", "--allow-unoptimized", "--collectors", "procfs,interrupts,ebpf"])
        .args(["--sut", &target, "--sut-harness", harness, "--ssh-config"])
        .arg(hosts.path("ssh_config"))
        .arg("--out")
        .arg(&out_dir));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let manifest = std::fs::read_to_string(out_dir.join("manifest.yaml")).unwrap();
    assert_eq!(manifest.matches("status: ok").count(), 2, "{manifest}\n{stderr}");
    // Both nodes are recorded, with the path the load took: the veth link.
    assert!(manifest.contains(&format!("sut: {target}")), "{manifest}");
    assert!(manifest.contains(&format!("target: {}", hosts.addr[0])), "{manifest}");
    assert!(manifest.contains(&format!("src {}", hosts.addr[1])), "the load left node-1 by its own address: {manifest}");
    let summary = std::fs::read_to_string(out_dir.join("summary.md")).unwrap();
    assert!(summary.contains("Two nodes:"), "{summary}");
    assert!(out_dir.join("figures/fig09_throughput.png").is_file());
    // The node side measured: CPU samples and eBPF counters of node-0's processes.
    let counters = std::fs::read_to_string(out_dir.join("counters.csv")).unwrap();
    assert!(counters.lines().any(|l| l.contains("s-spright") && l.contains("descriptor_recv")), "eBPF ran on node-0");
    let requests = std::fs::read_to_string(out_dir.join("requests.csv")).unwrap();
    assert!(requests.lines().filter(|l| l.contains("knative") && l.contains("measure")).count() > 10, "requests recorded");
    // Nothing of the run is left on node-0 once the session is over.
    // (The pattern does not match the command line of the shell that runs it.)
    let left = hosts.ssh(&["pgrep", "-f", "'node --stdi[o]'"]).output().unwrap();
    assert!(!left.status.success(), "a node session outlived the run: {}", String::from_utf8_lossy(&left.stdout));
}
