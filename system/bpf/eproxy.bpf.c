// SPDX-License-Identifier: GPL-2.0
/* EPROXY: the paper's in-kernel "sidecar" metrics at the gateway's interface.
 *
 * Two tc classifiers (ingress and egress) count the packets and bytes of the
 * gateway's TCP port, at zero user-space cost. They never change a verdict. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "spright_common.h"

/* Index 0: the gateway's TCP port in host byte order (0 = count nothing). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} eproxy_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, EPROXY_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} eproxy_counters SEC(".maps");

static __always_inline void add(__u32 idx, __u64 v)
{
	__u64 *n = bpf_map_lookup_elem(&eproxy_counters, &idx);
	if (n)
		*n += v;
}

/* Returns the TCP header's source/destination ports, or 0 when the packet is
 * not TCP over IPv4/IPv6 (no IPv6 extension headers: loopback and pod
 * traffic have none). */
static __always_inline int tcp_ports(struct __sk_buff *skb, __u16 *sport, __u16 *dport)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct tcphdr *tcp;

	if ((void *)(eth + 1) > end)
		return 0;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_TCP)
			return 0;
		tcp = (void *)ip + ip->ihl * 4;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > end || ip6->nexthdr != IPPROTO_TCP)
			return 0;
		tcp = (void *)(ip6 + 1);
	} else {
		return 0;
	}
	if ((void *)(tcp + 1) > end)
		return 0;
	*sport = bpf_ntohs(tcp->source);
	*dport = bpf_ntohs(tcp->dest);
	return 1;
}

static __always_inline __u32 gateway_port(void)
{
	__u32 zero = 0;
	__u32 *port = bpf_map_lookup_elem(&eproxy_config, &zero);
	return port ? *port : 0;
}

SEC("classifier")
int eproxy_ingress(struct __sk_buff *skb)
{
	__u16 sport, dport;
	__u32 gw = gateway_port();

	if (gw && tcp_ports(skb, &sport, &dport) && dport == gw) {
		add(EPROXY_RX_PKTS, 1);
		add(EPROXY_RX_BYTES, skb->len);
	}
	return TC_ACT_UNSPEC;
}

SEC("classifier")
int eproxy_egress(struct __sk_buff *skb)
{
	__u16 sport, dport;
	__u32 gw = gateway_port();

	if (gw && tcp_ports(skb, &sport, &dport) && sport == gw) {
		add(EPROXY_TX_PKTS, 1);
		add(EPROXY_TX_BYTES, skb->len);
	}
	return TC_ACT_UNSPEC;
}

char _license[] SEC("license") = "GPL";
