//! Bringing a mode up and down on a Kubernetes cluster (Ansible tag
//! `cluster`) with the project's manifests, and finding its processes by
//! their pods' cgroups, so that every collector of `harness node` works
//! there as it does on processes it started itself.
//!
//! The node runs `kubectl` on node-0 with the admin credentials kubeadm
//! wrote. A mode is one manifest (which Ansible staged with the images'
//! tag), edited as the table in [`plan`] says, applied on up and deleted on
//! down; its processes are those of the containers of the pods it selects,
//! plus the cluster's own data path where the mode uses it (Kourier's
//! Envoy and Knative's activator).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{workspace_file, Component, Mode, Role, Workload};

/// The admin credentials `kubeadm init` leaves on node-0.
const KUBECONFIG: &str = "/etc/kubernetes/admin.conf";
/// How long a mode may take to become ready (Knative revisions included).
const READY_TIMEOUT: Duration = Duration::from_secs(300);

/// Pods of a mode: `kubectl get pods -n NAMESPACE -l SELECTOR`.
#[derive(Clone, Debug, PartialEq)]
pub struct Pods {
    pub namespace: &'static str,
    pub selector: String,
}

/// What bringing one mode of one workload up on the cluster means, as data.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterPlan {
    /// The manifest, relative to the repository (staged under `cluster/`).
    pub manifest: String,
    /// Text replacements applied to it first (transport, scale).
    pub edits: Vec<(String, String)>,
    /// The mode's own pods.
    pub pods: Pods,
    /// The kubectl command (arguments) that returns once they serve.
    pub ready: Vec<String>,
    /// Pods of the cluster's data path the mode's requests cross.
    pub data_path: Vec<(Pods, &'static str)>,
    /// The Service whose node port is the front door.
    pub front: (&'static str, String),
    /// The Host header the front door routes by (Knative), if any.
    pub host: Option<String>,
}

/// The domain the Ansible `knative` role configures (config-domain).
const KNATIVE_DOMAIN: &str = "example.com";

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// The table: which manifest, edited how, selecting which pods.
pub fn plan(mode: Mode, workload: Workload) -> Result<ClusterPlan, String> {
    let w = workload.name();
    let knative_data_path = || {
        vec![
            (Pods { namespace: "kourier-system", selector: "app=3scale-kourier-gateway".into() }, "ingress"),
            (Pods { namespace: "knative-serving", selector: "app=activator".into() }, "activator"),
        ]
    };
    let timeout = format!("--timeout={}s", READY_TIMEOUT.as_secs());
    Ok(match (mode, workload) {
        (m, _) if m.transport().is_some() => ClusterPlan {
            manifest: format!("workloads/{w}/deploy/spright.yaml"),
            edits: vec![("--transport, skmsg".into(), format!("--transport, {}", m.transport().unwrap_or_default()))],
            pods: Pods { namespace: "spright", selector: format!("app.kubernetes.io/name={w}") },
            ready: strings(&["-n", "spright", "rollout", "status", &format!("deployment/{w}"), &timeout]),
            data_path: Vec::new(),
            front: ("spright", w.into()),
            host: None,
        },
        (Mode::Knative, Workload::Boutique) | (Mode::Knative | Mode::KnativeStz, Workload::Motion | Workload::Parking) => {
            // The manifests scale motion's and parking's functions to zero;
            // pre-warmed keeps one pod of each.
            let edits = match mode {
                Mode::Knative if workload != Workload::Boutique => {
                    vec![(r#"autoscaling.knative.dev/min-scale: "0""#.into(), r#"autoscaling.knative.dev/min-scale: "1""#.into())]
                }
                _ => Vec::new(),
            };
            let front = if workload == Workload::Boutique { "frontend" } else { "orchestrator" };
            ClusterPlan {
                manifest: format!("baselines/knative/deploy/{w}.yaml"),
                edits,
                pods: Pods { namespace: "default", selector: "serving.knative.dev/service".into() },
                ready: strings(&["-n", "default", "wait", "--for=condition=Ready", "ksvc", "--all", &timeout]),
                data_path: knative_data_path(),
                front: ("kourier-system", "kourier".into()),
                host: Some(format!("{front}.default.{KNATIVE_DOMAIN}")),
            }
        }
        (Mode::Grpc, Workload::Boutique) => ClusterPlan {
            manifest: "baselines/grpc/deploy/boutique.yaml".into(),
            edits: Vec::new(),
            pods: Pods { namespace: "grpc-baseline", selector: "app.kubernetes.io/component=grpc-baseline".into() },
            ready: strings(&["-n", "grpc-baseline", "wait", "--for=condition=Available", "deployment", "--all", &timeout]),
            data_path: Vec::new(),
            front: ("grpc-baseline", "frontend".into()),
            host: None,
        },
        (m, w) => return Err(format!("mode {} does not run workload {} on the cluster", m.name(), w.name())),
    })
}

/// One container of a pod, as the mode's component.
#[derive(Clone, Debug, PartialEq)]
pub struct Container {
    pub component: String,
    pub role: Role,
    /// containerd's id (`containerStatuses[].containerID` without `containerd://`).
    pub id: String,
}

/// The running containers of `kubectl get pods -o json`, named as
/// components: SPRIGHT's by container (gateway, functions), Knative's by
/// service (user container; `-queue-proxy` for its sidecar), the data
/// path's by `data_path_name`.
pub fn containers(pods: &Value, data_path_name: Option<&str>) -> Vec<Container> {
    let mut out = Vec::new();
    for pod in pods["items"].as_array().into_iter().flatten() {
        let knative_service = pod["metadata"]["labels"]["serving.knative.dev/service"].as_str();
        for status in pod["status"]["containerStatuses"].as_array().into_iter().flatten() {
            let (Some(name), Some(id)) = (status["name"].as_str(), status["containerID"].as_str()) else { continue };
            let id = id.split_once("://").map_or(id, |(_, id)| id).to_string();
            let (component, role) = match (data_path_name, knative_service, name) {
                (Some(d), _, _) => (d.to_string(), Role::Gateway),
                (None, Some(svc), "queue-proxy") => (format!("{svc}-queue-proxy"), Role::Sidecar),
                (None, Some("orchestrator"), _) => ("orchestrator".into(), Role::Orchestrator),
                (None, Some(svc), _) => (svc.to_string(), Role::Function),
                (None, None, "gateway") => ("gateway".into(), Role::Gateway),
                (None, None, n) => (n.to_string(), Role::Function),
            };
            out.push(Container { component, role, id });
        }
    }
    out
}

/// The cgroup of each container id under `root`, in one walk: the
/// directory whose name holds the id (`cri-containerd-ID.scope` with the
/// systemd driver, `ID` with cgroupfs), anywhere below the kubelet's pod
/// slices. Ids shorter than 12 characters match nothing.
pub fn container_cgroups(root: &Path, ids: &[&str]) -> HashMap<String, PathBuf> {
    fn walk(dir: &Path, ids: &[&str], depth: usize, found: &mut HashMap<String, PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let name = entry.file_name();
            let name = name.to_string_lossy();
            match ids.iter().find(|id| name.contains(**id)) {
                Some(id) => {
                    found.insert(id.to_string(), entry.path());
                }
                None if depth > 0 => walk(&entry.path(), ids, depth - 1, found),
                None => {}
            }
        }
    }
    let ids: Vec<&str> = ids.iter().copied().filter(|id| id.len() >= 12).collect();
    let mut found = HashMap::new();
    if !ids.is_empty() {
        walk(root, &ids, 5, &mut found);
    }
    found
}

/// Every process in a cgroup and the cgroups below it.
pub fn cgroup_pids(cgroup: &Path) -> Vec<u32> {
    let mut pids: Vec<u32> =
        std::fs::read_to_string(cgroup.join("cgroup.procs")).unwrap_or_default().lines().filter_map(|l| l.trim().parse().ok()).collect();
    for entry in std::fs::read_dir(cgroup).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            pids.extend(cgroup_pids(&entry.path()));
        }
    }
    pids
}

fn kubectl(args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    use std::io::Write;
    let mut cmd = Command::new("kubectl");
    cmd.args(["--kubeconfig", KUBECONFIG]).args(args);
    cmd.stdin(if stdin.is_some() { std::process::Stdio::piped() } else { std::process::Stdio::null() });
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("cannot run kubectl: {e}"))?;
    if let (Some(text), Some(mut input)) = (stdin, child.stdin.take()) {
        input.write_all(text.as_bytes()).map_err(|e| format!("kubectl: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("kubectl: {e}"))?;
    if !out.status.success() {
        return Err(format!("kubectl {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The staged manifest (images' tag filled in by Ansible), edited.
fn manifest_text(plan: &ClusterPlan) -> Result<String, String> {
    let staged = workspace_file(&format!("cluster/{}", plan.manifest));
    let mut text = std::fs::read_to_string(&staged).map_err(|e| {
        format!(
            "{}: {e} (the Ansible `cluster` role stages it with the images' tag: run site.yml without --skip-tags cluster)",
            staged.display()
        )
    })?;
    for (from, to) in &plan.edits {
        if !text.contains(from.as_str()) {
            return Err(format!("{}: no {from:?} to replace", plan.manifest));
        }
        text = text.replace(from.as_str(), to);
    }
    Ok(text)
}

/// A mode running on the cluster; dropping it deletes what it applied.
pub struct ClusterDeployment {
    pub addr: SocketAddr,
    pub host: Option<String>,
    manifest: Option<String>,
    components: Vec<Component>,
}

impl ClusterDeployment {
    /// Applies the mode's manifest, waits until it serves, and finds its
    /// processes. `node_ip`: the address the load reaches node-0 on.
    pub fn up(mode: Mode, workload: Workload, node_ip: std::net::IpAddr) -> Result<Self, String> {
        let plan = plan(mode, workload)?;
        let text = manifest_text(&plan)?;
        kubectl(&["apply", "-f", "-"], Some(&text))?;
        let mut me = Self { addr: SocketAddr::new(node_ip, 0), host: plan.host.clone(), manifest: Some(text), components: Vec::new() };
        kubectl(&plan.ready.iter().map(String::as_str).collect::<Vec<_>>(), None)?;
        let (ns, svc) = &plan.front;
        let port = kubectl(&["-n", ns, "get", "service", svc, "-o", "jsonpath={.spec.ports[0].nodePort}"], None)?;
        me.addr.set_port(port.trim().parse().map_err(|_| format!("service {ns}/{svc} has no node port ({port:?})"))?);
        me.components = find_components(&plan)?;
        Ok(me)
    }

    pub fn components(&self) -> Vec<Component> {
        self.components.clone()
    }

    /// Deletes what `up` applied and waits until its pods are gone.
    pub fn down(&mut self) {
        if let Some(text) = self.manifest.take() {
            if let Err(e) = kubectl(&["delete", "--wait=true", "--ignore-not-found", "-f", "-"], Some(&text)) {
                eprintln!("harness node: {e}");
            }
        }
    }
}

impl Drop for ClusterDeployment {
    fn drop(&mut self) {
        self.down();
    }
}

/// The mode's processes: every process in the cgroup of every running
/// container of its pods and of the data path's pods.
fn find_components(plan: &ClusterPlan) -> Result<Vec<Component>, String> {
    let mut groups = vec![(plan.pods.clone(), None)];
    groups.extend(plan.data_path.iter().map(|(p, name)| (p.clone(), Some(*name))));
    let mut containers_found = Vec::new();
    for (pods, data_path_name) in groups {
        let json = kubectl(&["-n", pods.namespace, "get", "pods", "-l", &pods.selector, "-o", "json"], None)?;
        // kubectl's output, not a message of the system under test: the
        // runtimes' counting wrappers (clippy.toml) are not for it.
        #[allow(clippy::disallowed_methods)]
        let json: Value = serde_json::from_str(&json).map_err(|e| format!("kubectl get pods: {e}"))?;
        containers_found.extend(containers(&json, data_path_name));
    }
    // A container's cgroup may appear just after kubectl reports it running.
    let (root, deadline) = (cgroup2_root(), Instant::now() + Duration::from_secs(30));
    let ids: Vec<&str> = containers_found.iter().map(|c| c.id.as_str()).collect();
    let cgroups = loop {
        let found = container_cgroups(&root, &ids);
        match containers_found.iter().find(|c| !found.contains_key(&c.id)) {
            None => break found,
            Some(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            Some(c) => return Err(format!("no cgroup for container {} ({}) under {}", c.component, c.id, root.display())),
        }
    };
    let out: Vec<Component> = containers_found
        .iter()
        .flat_map(|c| cgroup_pids(&cgroups[&c.id]).into_iter().map(|pid| Component { name: c.component.clone(), role: c.role, pid }))
        .collect();
    if out.is_empty() {
        return Err(format!("no process found for the pods {} in {}", plan.pods.selector, plan.pods.namespace));
    }
    Ok(out)
}

/// Where the cgroup v2 hierarchy is mounted: `/sys/fs/cgroup` on a node
/// with cgroup v2 only (what Kubernetes expects), `/sys/fs/cgroup/unified`
/// on a hybrid one (systemd mirrors its slices and scopes there).
pub fn cgroup2_root() -> PathBuf {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[2] == "cgroup2")
        .map_or_else(|| PathBuf::from("/sys/fs/cgroup"), |f| PathBuf::from(f[1]))
}
#[cfg(test)]
mod tests {
    use super::*;

    /// Every mode the cluster runs has a plan whose manifest exists and
    /// whose edits apply to it; the rest are refused.
    #[test]
    fn every_mode_maps_to_a_manifest_that_the_edits_fit() {
        let mut planned = 0;
        for mode in Mode::ALL {
            for workload in [Workload::Boutique, Workload::Motion, Workload::Parking] {
                let Ok(plan) = plan(mode, workload) else {
                    assert!(matches!(
                        (mode, workload),
                        (Mode::Grpc, Workload::Motion | Workload::Parking) | (Mode::KnativeStz, Workload::Boutique)
                    ));
                    continue;
                };
                planned += 1;
                let text = std::fs::read_to_string(workspace_file(&plan.manifest)).unwrap_or_else(|e| panic!("{}: {e}", plan.manifest));
                for (from, _) in &plan.edits {
                    assert!(text.contains(from.as_str()), "{}: {from:?} not in {}", mode.name(), plan.manifest);
                }
                // The front door is the mode's own Service, or Kourier's (the cluster's).
                let own = plan.front.0 != "kourier-system";
                assert!(!own || text.contains(&format!("name: {}", plan.front.1)), "{}: no Service {}", mode.name(), plan.front.1);
            }
        }
        assert_eq!(planned, 9 + 3 + 2 + 1);
    }

    #[test]
    fn pods_name_their_containers_as_components() {
        let pods: Value = serde_json::json!({"items": [
            {"metadata": {"labels": {"app.kubernetes.io/name": "boutique"}},
             "status": {"containerStatuses": [
                {"name": "gateway", "containerID": "containerd://aaaaaaaaaaaaaaaa"},
                {"name": "frontend", "containerID": "containerd://bbbbbbbbbbbbbbbb"},
                {"name": "starting"}]}},
            {"metadata": {"labels": {"serving.knative.dev/service": "currency"}},
             "status": {"containerStatuses": [
                {"name": "user-container", "containerID": "containerd://cccccccccccccccc"},
                {"name": "queue-proxy", "containerID": "containerd://dddddddddddddddd"}]}},
            {"metadata": {"labels": {"serving.knative.dev/service": "orchestrator"}},
             "status": {"containerStatuses": [{"name": "user-container", "containerID": "containerd://eeeeeeeeeeeeeeee"}]}}
        ]});
        let got: Vec<(String, Role, String)> = containers(&pods, None).into_iter().map(|c| (c.component, c.role, c.id)).collect();
        let want = [
            ("gateway", Role::Gateway, "aaaaaaaaaaaaaaaa"),
            ("frontend", Role::Function, "bbbbbbbbbbbbbbbb"),
            ("currency", Role::Function, "cccccccccccccccc"),
            ("currency-queue-proxy", Role::Sidecar, "dddddddddddddddd"),
            ("orchestrator", Role::Orchestrator, "eeeeeeeeeeeeeeee"),
        ];
        assert_eq!(got, want.map(|(a, b, c)| (a.to_string(), b, c.to_string())));
        let ingress = containers(&pods, Some("ingress"));
        assert!(ingress.iter().all(|c| c.component == "ingress" && c.role == Role::Gateway));
    }

    /// A real cgroup laid out as the kubelet's systemd driver lays it out,
    /// with a real process in it: found by container id, its pid listed.
    #[test]
    fn finds_a_containers_processes_by_its_cgroup() {
        assert_eq!(unsafe { libc::geteuid() }, 0, "this test makes cgroups: run it as root");
        let id = format!("{:064x}", std::process::id());
        let mount = cgroup2_root();
        assert!(mount.join("cgroup.procs").exists(), "no cgroup v2 hierarchy at {}", mount.display());
        let root = mount.join(format!("spright-test-{}.slice", std::process::id()));
        let pod = root.join("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0a1b2c3d_0000.slice");
        let scope = pod.join(format!("cri-containerd-{id}.scope"));
        std::fs::create_dir_all(&scope).unwrap_or_else(|e| panic!("cannot make {}: {e}", scope.display()));
        let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
        std::fs::write(scope.join("cgroup.procs"), sleeper.id().to_string()).unwrap();
        let other_id = format!("{:064x}", 1);
        let index = container_cgroups(&root, &[&id, &other_id]);
        let found = index.get(&id).cloned();
        let pids = found.as_deref().map(cgroup_pids).unwrap_or_default();
        let other = index.get(&other_id).cloned();
        // Clean up before asserting: the process out, then the cgroups, innermost first.
        sleeper.kill().unwrap();
        sleeper.wait().unwrap();
        let mut dir = scope.clone();
        while dir.starts_with(&root) {
            let _ = std::fs::remove_dir(&dir);
            dir = dir.parent().unwrap().to_path_buf();
        }
        assert_eq!(found.as_deref(), Some(scope.as_path()));
        assert_eq!(pids, vec![sleeper.id()]);
        assert_eq!(other, None, "another container's id matches nothing");
        assert!(!root.exists(), "test cgroups left behind");
    }
}
