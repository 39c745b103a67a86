// SPDX-License-Identifier: GPL-2.0
/* BARE_REDIRECT: the smallest sk_msg redirect, the floor SPROXY is measured
 * against (loaded by system/benches/hops.rs only, never by the runtime).
 *
 * Attached as an sk_msg verdict program to the `peers` SOCKMAP, which holds
 * the two loopback TCP sockets of a ping-pong at indices 0 and 1. The first
 * four bytes of each message (native endian) are the index of the socket to
 * deliver it to; the message is redirected (BPF_F_INGRESS) into that socket's
 * receive queue. Nothing else: the sender is not identified, no edge is
 * checked, nothing is counted, and there is no sink - the messages are not
 * SPRIGHT descriptors (spright_common.h), only 16 bytes of the same size.
 * A message too short to name an index, or naming an empty one, continues to
 * its socket's real TCP peer: never SK_DROP, which would poison the sending
 * socket. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 2);
	__type(key, __u32);   /* index named by the message's first bytes */
	__type(value, __u32); /* socket fd on update */
} peers SEC(".maps");

SEC("sk_msg")
int bare_redirect(struct sk_msg_md *msg)
{
	__u32 *dst = msg->data;

	if (msg->data + sizeof(*dst) > msg->data_end)
		return SK_PASS;
	/* Returns SK_DROP (and redirects nothing) for an empty index; the
	 * verdict stays SK_PASS either way. */
	bpf_msg_redirect_map(msg, &peers, *dst, BPF_F_INGRESS);
	return SK_PASS;
}

char _license[] SEC("license") = "GPL";
