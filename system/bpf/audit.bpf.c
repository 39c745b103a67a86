// SPDX-License-Identifier: GPL-2.0
/* AUDIT: per-process counts for the harness's overhead audit (loaded by
 * harness/src/collect/ebpf.rs, not by the runtime). Each tracepoint adds one
 * event (and its bytes) to the calling process's counters; userspace maps
 * processes to components and subtracts snapshots.
 *
 * Socket transfers. Every user/kernel data transfer on a socket passes
 * sock:sock_send_length (traced in sock_sendmsg_nosec) or
 * sock:sock_recv_length (traced in sock_recvmsg_nosec), whatever the
 * protocol's path below - including tcp_bpf_recvmsg, which delivers an
 * sk_msg-redirected message without skb_copy_datagram_iovec. A call that
 * moved bytes (ret > 0) is one transfer of ret bytes; a MSG_PEEK receive is
 * none (the same bytes are received again; the tracepoint's own format
 * reports it as length 0). A transfer is classified by its socket:
 *   descriptor - the socket is in a sockmap/sockhash, i.e. has a psock:
 *                sk->sk_user_data carries SK_USER_DATA_PSOCK (include/net/
 *                sock.h, 6.0 and later; set by sk_psock_init, cleared when
 *                the psock is dropped). The field's offset is relocated
 *                (CO-RE) against the running kernel's BTF at load;
 *   payload    - any other socket (HTTP, gRPC, unix, ...).
 *
 * Process starts. tp_btf/sched_process_fork records each new process (a
 * thread group leader: child->pid == child->tgid; new threads are left out)
 * with the process that started it, in an LRU hash that outlives both, so
 * userspace can attribute a process started at any time (a cold start, a
 * restarted function) even after it exited. The BTF-typed tracepoint gives
 * the child's task_struct (pid and tgid relocated by CO-RE); the classic
 * format carries no tgid and its layout changed in 6.x.
 *
 * The classic tracepoints' context layouts mirror
 * /sys/kernel/tracing/events/<group>/<event>/format (8 bytes of common
 * fields first). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

enum audit_event {
	AUDIT_PAYLOAD_SEND = 0,     /* sock_send_length, ret > 0, socket without psock */
	AUDIT_PAYLOAD_RECV = 1,     /* sock_recv_length, ret > 0, not a peek, socket without psock */
	AUDIT_DESCRIPTOR_SEND = 2,  /* sock_send_length, ret > 0, socket with psock (sk_msg) */
	AUDIT_DESCRIPTOR_RECV = 3,  /* sock_recv_length, ret > 0, not a peek, socket with psock */
	AUDIT_SWITCH_OUT = 4,       /* sched_switch for the task leaving; value: ns it ran */
	AUDIT_NETIF_RECEIVE = 5,    /* net:netif_receive_skb: one pass up the stack */
	AUDIT_DEV_XMIT = 6,         /* net:net_dev_xmit: one pass down the stack */
};

/* include/net/sock.h: sk_user_data flag bit of a socket that has a psock. */
#define SK_USER_DATA_PSOCK 4UL
#define MSG_PEEK 2

struct audit_key {
	__u32 tgid;
	__u32 event;
};

struct audit_value {
	__u64 count;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct audit_key);
	__type(value, struct audit_value);
} audit_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);   /* pid (= tgid) of a new process */
	__type(value, __u32); /* tgid of the process that forked it */
} audit_parents SEC(".maps");

/* Events the probe could not record: a map was full (audit_counts holds
 * 65 536 (process, event) entries; audit_runtime_seen 65 536 threads). A
 * run whose counters saw any says so: its counts are incomplete. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} audit_lost SEC(".maps");

#define EEXIST 17

static __always_inline void lose(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&audit_lost, &zero);

	if (n)
		__sync_fetch_and_add(n, 1);
}

/* Only the fields read here; CO-RE finds them by name in the kernel's BTF. */
struct sock {
	void *sk_user_data;
} __attribute__((preserve_access_index));

struct sched_entity {
	__u64 sum_exec_runtime;
} __attribute__((preserve_access_index));

struct task_struct {
	int pid;
	int tgid;
	struct sched_entity se;
} __attribute__((preserve_access_index));

struct tp_sock_length {
	__u64 common;
	struct sock *sk;
	__u16 family;
	__u16 protocol;
	int ret;
	int flags;
};

struct tp_net_len {
	__u64 common;
	void *skbaddr;
	unsigned int len;
};

static __always_inline void count(__u32 event, __u64 bytes)
{
	struct audit_key key = { .tgid = bpf_get_current_pid_tgid() >> 32, .event = event };
	struct audit_value *v = bpf_map_lookup_elem(&audit_counts, &key);
	struct audit_value init = { .count = 1, .bytes = bytes };
	long err;

	if (!v) {
		err = bpf_map_update_elem(&audit_counts, &key, &init, BPF_NOEXIST);
		if (!err)
			return;
		/* Another CPU inserted the key first (the other CPUs' values of
		 * a new per-CPU entry start at 0): add to ours. */
		v = err == -EEXIST ? bpf_map_lookup_elem(&audit_counts, &key) : 0;
		if (!v) {
			lose();
			return;
		}
	}
	v->count += 1;
	v->bytes += bytes;
}

static __always_inline int has_psock(struct sock *sk)
{
	__u64 user_data = 0;

	if (!sk || bpf_core_read(&user_data, sizeof(user_data), &sk->sk_user_data))
		return 0;
	return (user_data & SK_USER_DATA_PSOCK) != 0;
}

SEC("tracepoint/sock/sock_send_length")
int audit_sock_send(struct tp_sock_length *ctx)
{
	if (ctx->ret > 0)
		count(has_psock(ctx->sk) ? AUDIT_DESCRIPTOR_SEND : AUDIT_PAYLOAD_SEND, ctx->ret);
	return 0;
}

SEC("tracepoint/sock/sock_recv_length")
int audit_sock_recv(struct tp_sock_length *ctx)
{
	if (ctx->ret > 0 && !(ctx->flags & MSG_PEEK))
		count(has_psock(ctx->sk) ? AUDIT_DESCRIPTOR_RECV : AUDIT_PAYLOAD_RECV, ctx->ret);
	return 0;
}

/* Each thread's se.sum_exec_runtime when the probe last saw it (switched in
 * or out). Keyed by thread, not by CPU: a thread's slices add up to its
 * runtime whatever the order in which the CPUs' switches are traced. (A
 * per-CPU "who was switched in here" record lost whole slices: in about one
 * run in twenty under contention a thread switched out on a CPU whose last
 * traced switch-in was another thread's.) An entry is dropped at the
 * thread's final switch (TASK_DEAD); the idle threads (pid 0 on every CPU)
 * are not tracked. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);   /* pid (thread id) */
	__type(value, __u64); /* its se.sum_exec_runtime then */
} audit_runtime_seen SEC(".maps");

#define TASK_DEAD 0x80

/* tp_btf/sched_switch: (bool preempt, struct task_struct *prev,
 * struct task_struct *next, unsigned int prev_state). The current task is
 * still prev, the one switching out. What it ran is the growth of its
 * se.sum_exec_runtime since the probe last saw it - the scheduler's own
 * runtime, updated just before this tracepoint: to the nanosecond, time
 * stolen by the hypervisor left out (PARAVIRT_TIME_ACCOUNTING), interrupt
 * work done while it ran included (no IRQ_TIME_ACCOUNTING). The sum over a
 * process's switch-outs is its exact CPU time since the probe first saw
 * each of its threads, threads and processes that exited included, where
 * procfs reports whole 10 ms clock ticks. A thread running when the probe
 * was loaded counts from its first switch-out (that slice is not
 * counted); one that starts later counts from its fork. */
SEC("tp_btf/sched_switch")
int audit_switch(__u64 *ctx)
{
	struct task_struct *prev = (struct task_struct *)ctx[1];
	struct task_struct *next = (struct task_struct *)ctx[2];
	unsigned int prev_state = (unsigned int)ctx[3];
	__u32 prev_pid = prev->pid, next_pid = next->pid;
	__u64 ran = 0;

	if (prev_pid != 0) {
		__u64 now = prev->se.sum_exec_runtime;
		__u64 *seen = bpf_map_lookup_elem(&audit_runtime_seen, &prev_pid);

		if (seen && now >= *seen)
			ran = now - *seen;
		if (prev_state & TASK_DEAD)
			bpf_map_delete_elem(&audit_runtime_seen, &prev_pid);
		else if (bpf_map_update_elem(&audit_runtime_seen, &prev_pid, &now, BPF_ANY))
			lose();
	}
	if (next_pid != 0) {
		__u64 next_runtime = next->se.sum_exec_runtime;
		long err;

		/* First sight of this thread: count from here. */
		err = bpf_map_update_elem(&audit_runtime_seen, &next_pid, &next_runtime, BPF_NOEXIST);
		if (err && err != -EEXIST)
			lose();
	}
	count(AUDIT_SWITCH_OUT, ran);
	return 0;
}

SEC("tracepoint/net/netif_receive_skb")
int audit_netif_receive(struct tp_net_len *ctx)
{
	count(AUDIT_NETIF_RECEIVE, ctx->len);
	return 0;
}

SEC("tracepoint/net/net_dev_xmit")
int audit_dev_xmit(struct tp_net_len *ctx)
{
	count(AUDIT_DEV_XMIT, ctx->len);
	return 0;
}

/* Arguments: (struct task_struct *parent, struct task_struct *child); the
 * current task is the one forking. */
SEC("tp_btf/sched_process_fork")
int audit_fork(__u64 *ctx)
{
	struct task_struct *child = (struct task_struct *)ctx[1];
	__u32 pid = child->pid;
	__u64 runtime = 0;
	__u32 parent;

	/* Every new thread counts from its start, whichever CPU runs it. */
	if (bpf_map_update_elem(&audit_runtime_seen, &pid, &runtime, BPF_ANY))
		lose();
	if (pid != (__u32)child->tgid)
		return 0;
	parent = bpf_get_current_pid_tgid() >> 32;
	bpf_map_update_elem(&audit_parents, &pid, &parent, BPF_ANY);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
