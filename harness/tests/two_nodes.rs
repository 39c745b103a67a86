//! Two nodes on one machine: node-0 and node-1 are network namespaces
//! joined by a veth pair; node-0 runs a real `sshd` (key authentication
//! only), node-1 runs the experiment driver with `--sut ssh://...`, so the
//! load crosses the veth link to node-0's front door and node-0 is driven
//! through `harness node --stdio` over SSH - the same protocol a local run
//! speaks over a socket pair. Everything the test makes is removed
//! afterwards, also when it fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
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
    veth: [String; 2],
    dir: PathBuf,
    sshd: Option<Child>,
    port: u16,
    made_run_sshd: bool,
}

impl TwoHosts {
    fn new() -> Self {
        // Tests of this file run in parallel in one process: each pair of hosts gets its own names.
        static MADE: AtomicU32 = AtomicU32::new(0);
        let k = MADE.fetch_add(1, Ordering::Relaxed);
        let id = std::process::id();
        let net = 16 + (id + 37 * k) % 200;
        let dir = std::env::temp_dir().join(format!("harness-two-nodes-{id}-{k}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut hosts = Self {
            ns: [format!("spr-n0-{id}-{k}"), format!("spr-n1-{id}-{k}")],
            addr: [format!("10.231.{net}.1"), format!("10.231.{net}.2")],
            veth: [format!("s{k}a-{}", id % 100_000), format!("s{k}b-{}", id % 100_000)],
            dir,
            sshd: None,
            port: 2222,
            made_run_sshd: false,
        };
        let veth = hosts.veth.clone();
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
        // Its log goes to a file: a session it leaves would hold an inherited pipe open.
        let log = std::fs::File::create(self.path("sshd.log")).unwrap();
        let sshd = Command::new("ip")
            .args(["netns", "exec", &self.ns[0], "/usr/sbin/sshd", "-D", "-e", "-f"])
            .arg(self.path("sshd_config"))
            .stdout(Stdio::null())
            .stderr(log)
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

    /// The processes in node-0 other than its sshd and SSH sessions.
    fn node0_processes(&self) -> Vec<String> {
        let out = run(Command::new("ip").args(["netns", "pids", &self.ns[0]]));
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|pid| Some(format!("{pid} {}", std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?.trim())))
            .filter(|p| !p.ends_with(" sshd") && !p.contains(" sshd-"))
            .collect()
    }

    /// Waits until node-0 runs nothing but its sshd (and SSH sessions).
    fn wait_until_node0_is_empty(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let left = self.node0_processes();
            if left.is_empty() {
                return;
            }
            assert!(Instant::now() < deadline, "left running on node-0: {left:?}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// `harness experiment` on node-1 against node-0 (smoke profile).
    fn experiment(&self, modes: &str, out_dir: &Path) -> Command {
        let harness = env!("CARGO_BIN_EXE_harness");
        let target = format!("ssh://root@{}:{}", self.addr[0], self.port);
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns[1], harness, "experiment", "boutique", "--modes", modes])
            .args(["--profile", "smoke", "--allow-unoptimized", "--collectors", "procfs,interrupts,ebpf"])
            .args(["--sut", &target, "--sut-harness", harness, "--ssh-config"])
            .arg(self.path("ssh_config"))
            .arg("--out")
            .arg(out_dir);
        cmd
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
            // Whatever still runs there goes first (an SSH session on a
            // dead link lives on by itself); deleting a namespace deletes
            // its end of the veth pair, and so the pair.
            if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
                    // SAFETY: kill has no memory preconditions; these are the namespace's processes.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
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
    let out_dir = hosts.path("run");
    let target = format!("ssh://root@{}:{}", hosts.addr[0], hosts.port);
    let out = run(&mut hosts.experiment("s-spright,knative", &out_dir));
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
    hosts.wait_until_node0_is_empty(Duration::from_secs(20));
}

#[test]
fn a_dead_link_ends_the_run_with_a_clear_error_and_nothing_left_running() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "namespaces, sshd and eBPF need root; run the tests as root");
    let hosts = TwoHosts::new();
    let out_dir = hosts.path("run");
    let driver = hosts.experiment("knative,e-spright", &out_dir).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    // Once the Knative model is up on node-0, the link dies (no FIN, no RST: a half-open connection on both sides).
    let deadline = Instant::now() + Duration::from_secs(60);
    while hosts.node0_processes().len() < 15 {
        assert!(Instant::now() < deadline, "the Knative model never came up on node-0");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    ip(&["-n", &hosts.ns[1], "link", "set", &hosts.veth[1], "down"]);
    let cut = Instant::now();
    let out = driver.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a lost node makes the run incomplete: {stderr}");
    assert!(cut.elapsed() < Duration::from_secs(90), "the driver noticed the dead link (ssh keep-alives)");
    // The partial run directory is kept and says what happened.
    let manifest = std::fs::read_to_string(out_dir.join("manifest.yaml")).unwrap();
    assert!(manifest.contains(&format!("failed: node ssh://root@{}", hosts.addr[0])), "{manifest}");
    assert!(out_dir.join("summary.md").is_file(), "{stderr}");
    // node-0 notices the silence and tears everything down.
    hosts.wait_until_node0_is_empty(Duration::from_secs(60));
}
