/* Layouts shared between the eBPF programs and the Rust loader
 * (system/src/bpf/maps.rs mirrors every struct here; keep them in step). */
#ifndef SPRIGHT_COMMON_H
#define SPRIGHT_COMMON_H

#include <linux/types.h>

/* A descriptor on the wire: system/src/descriptor.rs. */
#define SPRIGHT_DESC_MAGIC 0x5350 /* "SP" */
#define SPRIGHT_DESC_SIZE 16

struct spright_desc {
	__u16 magic;
	__u16 flags;
	__u32 dst;  /* endpoint key: chain << 16 | function id (0 = gateway) */
	__u32 slot;
	__u32 gen;
};

/* The control plane's sink socket: refused descriptors are redirected here
 * and counted. Returning SK_DROP would poison the sender's socket. */
#define SPRIGHT_SINK_KEY 0xffffffffu

/* Why SPROXY refused a descriptor (index into sproxy_drops). */
enum spright_drop_reason {
	DROP_BAD_LENGTH = 0,   /* not exactly one descriptor per sendmsg */
	DROP_BAD_MAGIC = 1,
	DROP_UNKNOWN_SENDER = 2,
	DROP_EDGE_DENIED = 3,  /* destination outside the sender's chain/edges */
	DROP_NO_ROUTE = 4,     /* destination not registered (dead/not started) */
	DROP_REASONS = 5,
};

struct spright_edge {
	__u32 src;
	__u32 dst;
};

/* Per-endpoint traffic seen by SPROXY (per-CPU; user space sums). */
struct spright_fn_stats {
	__u64 tx_msgs;
	__u64 tx_bytes;
	__u64 rx_msgs;
	__u64 rx_bytes;
};

/* EPROXY counters (index into eproxy_counters). */
enum spright_eproxy_counter {
	EPROXY_RX_PKTS = 0,  /* packets to the gateway port (ingress hook) */
	EPROXY_RX_BYTES = 1,
	EPROXY_TX_PKTS = 2,  /* packets from the gateway port (egress hook) */
	EPROXY_TX_BYTES = 3,
	EPROXY_COUNTERS = 4,
};

#endif
