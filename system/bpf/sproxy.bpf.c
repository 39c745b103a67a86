// SPDX-License-Identifier: GPL-2.0
/* SPROXY: delivers SPRIGHT descriptors between the functions of a chain.
 *
 * Attached as an sk_msg verdict program to the `endpoints` SOCKHASH. Every
 * function owns one loopback TCP socket in that map; a descriptor sent on it
 * is redirected (BPF_F_INGRESS) to the destination's receive queue. The sender
 * is identified by its socket's local port, which the control plane recorded
 * at registration - not by anything the sender writes - and the (sender,
 * destination) edge must be allowed. Anything refused goes to the sink socket
 * and is counted: never SK_DROP, which would poison the sending socket. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "spright_common.h"

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u32); /* socket fd on update */
} endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);   /* local TCP port of a registered socket */
	__type(value, __u32); /* its endpoint key */
} sender_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct spright_edge);
	__type(value, __u8);
} edges SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct spright_fn_stats);
} fn_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DROP_REASONS);
	__type(key, __u32);
	__type(value, __u64);
} sproxy_drops SEC(".maps");

static __always_inline void count_drop(__u32 reason)
{
	__u64 *n = bpf_map_lookup_elem(&sproxy_drops, &reason);
	if (n)
		*n += 1;
}

static __always_inline int to_sink(struct sk_msg_md *msg, __u32 reason)
{
	__u32 sink = SPRIGHT_SINK_KEY;

	count_drop(reason);
	/* With no sink registered the message continues to the socket's real
	 * peer, which the control plane also owns and drains. */
	bpf_msg_redirect_hash(msg, &endpoints, &sink, BPF_F_INGRESS);
	return SK_PASS;
}

SEC("sk_msg")
int sproxy(struct sk_msg_md *msg)
{
	__u32 port = msg->local_port;
	__u32 size = msg->size;
	__u32 *src = bpf_map_lookup_elem(&sender_ports, &port);
	struct spright_fn_stats *st;
	struct spright_desc *d;
	struct spright_edge edge;

	if (!src)
		return to_sink(msg, DROP_UNKNOWN_SENDER);
	if (size != SPRIGHT_DESC_SIZE)
		return to_sink(msg, DROP_BAD_LENGTH);
	if (msg->data + SPRIGHT_DESC_SIZE > msg->data_end)
		return to_sink(msg, DROP_BAD_LENGTH);
	d = msg->data;
	if (d->magic != SPRIGHT_DESC_MAGIC)
		return to_sink(msg, DROP_BAD_MAGIC);

	edge.src = *src;
	edge.dst = d->dst;
	if (!bpf_map_lookup_elem(&edges, &edge))
		return to_sink(msg, DROP_EDGE_DENIED);

	/* Fails (SK_DROP) when the destination's socket is gone. */
	if (bpf_msg_redirect_hash(msg, &endpoints, &edge.dst, BPF_F_INGRESS) != SK_PASS)
		return to_sink(msg, DROP_NO_ROUTE);

	st = bpf_map_lookup_elem(&fn_stats, &edge.src);
	if (st) {
		st->tx_msgs += 1;
		st->tx_bytes += size;
	}
	st = bpf_map_lookup_elem(&fn_stats, &edge.dst);
	if (st) {
		st->rx_msgs += 1;
		st->rx_bytes += size;
	}
	return SK_PASS;
}

char _license[] SEC("license") = "GPL";
