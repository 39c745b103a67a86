#!/usr/bin/env bash
# The Ansible provisioning, tested for real on one machine: two hosts are
# network namespaces on a bridge, each with a real sshd (key authentication
# only) and its own private /opt, /root, /etc/ssh and /etc/sysctl.d (mount
# namespaces), reached only through their addresses on that bridge. Runs
# site.yml (without the cluster tag) twice - the second run must change
# nothing - then experiment.yml with a smoke experiment whose load runs on
# node-1 against node-0, node-0 driven over SSH, and checks the fetched run
# directory; then lints and syntax-checks every playbook. Everything it
# makes is removed on exit, also on failure.
#
# bash ansible/test/two-hosts.sh   (root; uses the binaries `cargo test` built
# in target/debug, or those in $SPRIGHT_BINARIES)
#
# The same hosts measure a two-node run when asked (release binaries):
#   SPRIGHT_BINARIES=target/release TWO_HOSTS_PROFILE=local TWO_HOSTS_MODES=s-spright,d-spright,e-spright,knative,grpc \
#   TWO_HOSTS_ARGS='--repeat 3 --reference' TWO_HOSTS_RESULTS=results/two-nodes bash ansible/test/two-hosts.sh
# (both "hosts" share this machine's cores and kernel: such a run measures
# the split harness and the bridge path, not two machines).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
if [ "$(id -u)" != 0 ]; then
    echo "two-hosts.sh: needs root (namespaces, mounts, sshd)" >&2
    exit 1
fi
for tool in ip unshare /usr/sbin/sshd ssh ssh-keygen python3; do
    command -v "$tool" >/dev/null || { echo "two-hosts.sh: $tool is missing" >&2; exit 1; }
done
bins=$(realpath -m "${SPRIGHT_BINARIES:-$repo/target/debug}")
profile=${TWO_HOSTS_PROFILE:-smoke}
modes=${TWO_HOSTS_MODES:-s-spright,knative}
[ -n "$modes" ] || { echo "two-hosts.sh: TWO_HOSTS_MODES names the modes" >&2; exit 1; }
results=${TWO_HOSTS_RESULTS:+$(realpath -m "$TWO_HOSTS_RESULTS")}
extra_args=${TWO_HOSTS_ARGS:-}
[ -x "$bins/harness" ] || { echo "two-hosts.sh: no binaries in $bins (run cargo test first)" >&2; exit 1; }

t=$(mktemp -d /tmp/spright-two-hosts.XXXXXX)
id=$$
net=10.232.$((id % 200 + 16))
ns=("spr-host0-$id" "spr-host1-$id")
addr=("$net.1" "$net.2")
br="sprbr$((id % 100000))"
sshd_pids=()
made_run_sshd=0

cleanup() {
    set +e
    for p in "${sshd_pids[@]}"; do kill "$p" 2>/dev/null; done
    for n in "${ns[@]}"; do
        # Whatever still runs in a host (sessions, the system under test) goes with it.
        ip netns pids "$n" 2>/dev/null | xargs -r kill -9 2>/dev/null
        ip netns del "$n" 2>/dev/null
    done
    ip link del "$br" 2>/dev/null
    # Ansible's SSH control masters (their sockets are in the test's directory).
    pkill -f -- "$t/cp" 2>/dev/null
    [ "$made_run_sshd" = 1 ] && rmdir /run/sshd 2>/dev/null
    wait 2>/dev/null
    rm -rf "$t"
}
trap cleanup EXIT

step() { echo "== two-hosts: $*"; }

step "network: bridge $br ($net.254), hosts ${addr[*]}"
ip link add "$br" type bridge
ip addr add "$net.254/24" dev "$br"
ip link set "$br" up
for i in 0 1; do
    ip netns add "${ns[$i]}"
    ip -n "${ns[$i]}" link set lo up
    ip link add "spv$i-$((id % 100000))" type veth peer name eth0 netns "${ns[$i]}"
    ip link set "spv$i-$((id % 100000))" master "$br" up
    ip -n "${ns[$i]}" addr add "${addr[$i]}/24" dev eth0
    ip -n "${ns[$i]}" link set eth0 up
done

hugepages_before=$(cat /proc/sys/vm/nr_hugepages)

step "sshd in each host"
if [ ! -d /run/sshd ]; then
    mkdir -p /run/sshd
    made_run_sshd=1
fi
ssh-keygen -q -t ed25519 -N '' -C controller -f "$t/controller"
: >"$t/known_hosts"
for i in 0 1; do
    h="$t/host$i"
    mkdir -p "$h/opt" "$h/root" "$h/etc-ssh" "$h/sysctl.d"
    ssh-keygen -q -t ed25519 -N '' -C "node-$i" -f "$h/etc-ssh/ssh_host_ed25519_key"
    cp "$t/controller.pub" "$h/etc-ssh/bootstrap_keys"
    cat >"$h/etc-ssh/sshd_config" <<CONF
ListenAddress ${addr[$i]}:22
HostKey /etc/ssh/ssh_host_ed25519_key
AuthorizedKeysFile /etc/ssh/bootstrap_keys .ssh/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PidFile none
Subsystem sftp /usr/lib/openssh/sftp-server
CONF
    echo "${addr[$i]} $(cut -d' ' -f1,2 "$h/etc-ssh/ssh_host_ed25519_key.pub")" >>"$t/known_hosts"
    ip netns exec "${ns[$i]}" unshare --mount --propagation private sh -c "
        mount --bind '$h/opt' /opt && mount --bind '$h/root' /root &&
        mount --bind '$h/etc-ssh' /etc/ssh && mount --bind '$h/sysctl.d' /etc/sysctl.d &&
        exec /usr/sbin/sshd -D -e -f /etc/ssh/sshd_config" 2>"$h/sshd.log" &
    sshd_pids+=($!)
done
ssh_opts=(-i "$t/controller" -o IdentitiesOnly=yes -o UserKnownHostsFile="$t/known_hosts" -o StrictHostKeyChecking=yes -o BatchMode=yes)
for a in "${addr[@]}"; do
    for _ in $(seq 100); do
        ssh "${ssh_opts[@]}" "root@$a" true 2>/dev/null && break
        sleep 0.2
    done
    ssh "${ssh_opts[@]}" "root@$a" true
done

step "ansible (virtual environment from ansible/requirements.txt)"
. "$repo/ansible/test/venv.sh"
export ANSIBLE_CONFIG="$repo/ansible/ansible.cfg" ANSIBLE_NOCOLOR=1
export ANSIBLE_SSH_CONTROL_PATH_DIR="$t/cp" ANSIBLE_LOCAL_TEMP="$t/ansible-local" ANSIBLE_HOME="$t/ansible-home"

cat >"$t/inventory.yml" <<INV
all:
  vars:
    ansible_user: root
    ansible_ssh_private_key_file: $t/controller
    ansible_ssh_common_args: -o IdentitiesOnly=yes -o UserKnownHostsFile=$t/known_hosts -o StrictHostKeyChecking=yes
    spright_sut_address: ${addr[0]}
  children:
    sut:
      hosts:
        node-0:
          ansible_host: ${addr[0]}
    loadgen:
      hosts:
        node-1:
          ansible_host: ${addr[1]}
INV
# The test's own settings, as extra variables: they must win over
# group_vars/all.yml (which an inventory's variables do not).
cat >"$t/test-vars.yml" <<VARS
# The binaries cargo test built, staged in the test's directory.
spright_prebuilt_dir: $bins
spright_stage_dir: $t/stage
# vm.nr_hugepages is machine-wide: the test leaves it alone.
spright_hugepages: 0
VARS
cd "$repo/ansible"

step "site.yml --skip-tags cluster"
ansible-playbook -i "$t/inventory.yml" -e @"$t/test-vars.yml" site.yml --skip-tags cluster | tee "$t/site1.log"
step "site.yml again: nothing may change"
ansible-playbook -i "$t/inventory.yml" -e @"$t/test-vars.yml" site.yml --skip-tags cluster | tee "$t/site2.log"
recap=$(sed -n '/PLAY RECAP/,$p' "$t/site2.log")
if echo "$recap" | grep -E 'changed=[1-9]' >/dev/null; then
    echo "two-hosts: the second site.yml run changed something:" >&2
    echo "$recap" >&2
    exit 1
fi
# node-0 got the driver's key, node-1 the key and node-0's host key; /opt stayed private.
ssh "${ssh_opts[@]}" "root@${addr[0]}" "grep -q 'spright-rs driver on node-1' /root/.ssh/authorized_keys"
ssh "${ssh_opts[@]}" "root@${addr[1]}" test -s /opt/spright/etc/known_hosts -a -x /opt/spright/bin/harness
[ ! -e /opt/spright ] || { echo "two-hosts: the roles wrote to this machine's /opt" >&2; exit 1; }
[ "$(cat /proc/sys/vm/nr_hugepages)" = "$hugepages_before" ] || { echo "two-hosts: the roles changed this machine's huge pages" >&2; exit 1; }
# The staged binaries are the test's (not a release build made on the side).
objcopy --strip-debug "$bins/harness" "$t/harness.stripped"
cmp -s "$t/harness.stripped" "$t/stage/bin/harness" || { echo "two-hosts: the prebuilt binaries were not the ones staged" >&2; exit 1; }

step "experiment.yml: boutique $profile, $modes, load on node-1"
ansible-playbook -i "$t/inventory.yml" -e @"$t/test-vars.yml" experiment.yml -e experiment=boutique -e profile="$profile" \
    -e modes="$modes" -e spright_allow_unoptimized=true -e spright_results_dir="${results:-$t/results}" \
    -e "{\"spright_experiment_args\": \"$extra_args\"}" | tee "$t/experiment.log"
run=$(find "${results:-$t/results}/boutique" -mindepth 1 -maxdepth 1 -type d -newer "$t/inventory.yml" | head -1)
[ -n "$run" ] || { echo "two-hosts: no run directory fetched" >&2; exit 1; }
check() { grep -q -- "$2" "$run/$1" || { echo "two-hosts: $1 lacks '$2'" >&2; exit 1; }; }
check manifest.yaml "two_nodes:"
check manifest.yaml "sut: ssh://root@${addr[0]}:22"
check manifest.yaml "src ${addr[1]}"
# Every mode of every repeat ran, and ran well.
[ "$(grep -c 'status: ok' "$run/manifest.yaml")" -ge "$(echo "$modes" | tr ',' '\n' | grep -c .)" ] &&
    ! grep 'status:' "$run/manifest.yaml" | grep -qv 'status: ok' || { echo "two-hosts: a mode failed" >&2; cat "$run/manifest.yaml" >&2; exit 1; }
check summary.md "Two nodes:"
if [ -e "$run/requests.csv" ]; then
    [ "$(grep -c ',measure,' "$run/requests.csv")" -gt 10 ] || { echo "two-hosts: too few requests recorded" >&2; exit 1; }
else # a reference run stores parquet only
    [ -s "$run/requests.parquet" ] || { echo "two-hosts: no requests recorded" >&2; exit 1; }
fi
[ -s "$run/figures/fig09_throughput.png" ] || { echo "two-hosts: no figure" >&2; exit 1; }
if ssh "${ssh_opts[@]}" "root@${addr[0]}" pgrep -f "'node --stdi[o]'"; then
    echo "two-hosts: a node session outlived the experiment" >&2
    exit 1
fi

step "ansible-lint (production profile) and syntax checks"
ansible-lint --offline --profile production
for p in site.yml experiment.yml; do
    ansible-playbook -i inventory.example.yml --syntax-check "$p"
done
step "passed"
