// SPDX-License-Identifier: GPL-2.0
/* AUDIT: per-process counts for the harness's overhead audit (loaded by
 * harness/src/collect/ebpf.rs, not by the runtime). Each tracepoint adds one
 * event (and its bytes) to the calling process's counters; userspace maps
 * processes to components and subtracts snapshots. The context layouts
 * mirror /sys/kernel/tracing/events/<group>/<event>/format (8 bytes of
 * common fields first). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

enum audit_event {
	AUDIT_SOCK_SEND = 0,     /* sock:sock_send_length, ret > 0: user -> kernel copy */
	AUDIT_SOCK_RECV = 1,     /* sock:sock_recv_length, ret > 0 */
	AUDIT_SKB_COPY = 2,      /* skb:skb_copy_datagram_iovec: kernel -> user copy */
	AUDIT_SWITCH_OUT = 3,    /* sched:sched_switch, counted for the task leaving */
	AUDIT_NETIF_RECEIVE = 4, /* net:netif_receive_skb: one pass up the stack */
	AUDIT_DEV_XMIT = 5,      /* net:net_dev_xmit: one pass down the stack */
};

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

struct tp_sock_length {
	__u64 common;
	void *sk;
	__u16 family;
	__u16 protocol;
	int ret;
	int flags;
};

struct tp_skb_copy {
	__u64 common;
	const void *skbaddr;
	int len;
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
	if (v) {
		v->count += 1;
		v->bytes += bytes;
	} else {
		struct audit_value init = { .count = 1, .bytes = bytes };
		bpf_map_update_elem(&audit_counts, &key, &init, BPF_NOEXIST);
	}
}

SEC("tracepoint/sock/sock_send_length")
int audit_sock_send(struct tp_sock_length *ctx)
{
	if (ctx->ret > 0)
		count(AUDIT_SOCK_SEND, ctx->ret);
	return 0;
}

SEC("tracepoint/sock/sock_recv_length")
int audit_sock_recv(struct tp_sock_length *ctx)
{
	if (ctx->ret > 0)
		count(AUDIT_SOCK_RECV, ctx->ret);
	return 0;
}

SEC("tracepoint/skb/skb_copy_datagram_iovec")
int audit_skb_copy(struct tp_skb_copy *ctx)
{
	count(AUDIT_SKB_COPY, ctx->len > 0 ? ctx->len : 0);
	return 0;
}

/* The current task is still the one switching out. */
SEC("tracepoint/sched/sched_switch")
int audit_switch(void *ctx)
{
	count(AUDIT_SWITCH_OUT, 0);
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

char LICENSE[] SEC("license") = "GPL";
