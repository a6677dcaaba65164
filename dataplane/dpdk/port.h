// port.h: bringing up the data port (RSS over one RX queue per worker, one TX queue per
// worker plus one for the exception forwarder) and the exception port (a TAP interface that
// carries the data port's MAC, one queue pair per worker).
//
// Every failure is an absl::Status whose message is one line telling the operator what to
// change (e.g. "port 0 (net_af_packet0) offers 1 TX queues, 3 needed: add qpairs=3 to its
// --vdev").
//
// Thread-safety: start-up only, on the main lcore.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "dataplane/packet/headers.h"

struct rte_mempool;

namespace ecmplb::dataplane {

struct PortConfig {
  uint16_t rx_queues = 1;  // one per worker (see QueuesArePaired)
  bool rss = true;         // spread flows over the RX queues with RSS (when rx_queues > 1)
  bool rx_interrupts = false;  // RX queue interrupts (the TAP: an event-driven forwarder)
  uint16_t tx_queues = 1;  // one per worker (+1 for the exception forwarder on the data port)
  uint16_t rx_desc = 1024;
  uint16_t tx_desc = 1024;
  uint16_t mtu = 1500;  // IP MTU; 0 leaves the port's default
  bool promiscuous = false;
  // Receive every multicast group: OSPFv2 (224.0.0.5/6), OSPFv3 (ff02::5/6) and neighbour
  // discovery (solicited-node groups) must reach the kernel through the exception path, and a
  // NIC filters multicast it was not told about. Best effort: a PMD without the setting (vdevs
  // on kernel interfaces, which see everything anyway) or refusing it still starts; see
  // Engine::data_port_allmulticast.
  bool allmulticast = false;
};

std::string PortName(uint16_t port_id);

// True for PMDs whose RX and TX queues come in pairs that the kernel feeds itself
// (net_af_packet: one socket per queue pair, flows spread by PACKET_FANOUT hash). Such a port
// must have as many RX queues as TX queues, and every one of them must be polled; RSS does not
// apply.
bool QueuesArePaired(uint16_t port_id);

// Configures and starts `port_id`. With rx_queues > 1 and rss: RSS over IPv4/IPv6 TCP/UDP and
// fragments (as much of it as the port supports; at least IPv4 or IPv6, else refused) with
// ecmplb's own key (dataplane/rss.h; repeated to the port's key size if it is not 40 bytes),
// read back after start-up and refused if the port did not take it.
absl::Status StartPort(uint16_t port_id, const PortConfig& config, rte_mempool* pool);

absl::StatusOr<MacAddr> PortMac(uint16_t port_id);

// Creates the kernel exception interface `ifname` (a net_tap vdev with `mac`) and returns
// its port id. Fails clearly if the TAP cannot be created (no /dev/net/tun, no CAP_NET_ADMIN,
// name taken).
absl::StatusOr<uint16_t> CreateTap(const std::string& ifname, const MacAddr& mac);

// Picks the data port: the only ethdev that is not `exclude`; refuses zero or several.
absl::StatusOr<uint16_t> FindDataPort(int requested, uint16_t exclude_from, uint16_t exclude_to);

absl::StatusOr<rte_mempool*> CreatePool(const std::string& name, uint32_t mbufs, int socket);

}  // namespace ecmplb::dataplane
