// traffic_model.h: ecmplb-gen's flow model: which services it targets (from an ecmplb config),
// how a flow id maps to a 5-tuple and back, which queue carries a flow, which backend ecmplb
// must pick for it, and the MAC address every next hop is given in the benchmark.
//
// Flow ids. Established flows are ids [0, flows); new flows (one SYN or first UDP packet
// each) take ids [flows, capacity) in order, wrapping back to `flows` after capacity - flows of
// them. Flow f belongs to service f % S (S = number of targeted services); its client address
// comes from that service's family's client net and its port from f:
//   source address = client net base + 1 + f / 64512   (the network address itself is skipped)
//   source port    = 1024 + f % 64512
//   destination    = the service's VIP and port
// so the checker decodes f from the (inner) source address and port alone, and checks that the
// destination is f's service.
//
// Next-hop MACs (the --neighbors rule): IPv4 a.b.c.d -> 02:00:a:b:c:d; IPv6 -> 02 followed by
// the address's last five bytes. The benchmark installs these as permanent neighbour entries on
// ecmplb's exception interface, so a DR frame (and a GRE frame's outer header) tells which
// backend ecmplb picked.
//
// Thread-safety: immutable after Create(); any number of threads may call its const methods.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "bench/gen/toeplitz.h"
#include "control/config.h"
#include "dataplane/packet/headers.h"
#include "dataplane/packet/parse.h"
#include "dataplane/snapshot.h"

namespace ecmplb::gen {

using dataplane::IpAddr;
using dataplane::MacAddr;

inline constexpr uint16_t kFirstPort = 1024;
inline constexpr uint32_t kPortsPerAddr = 65536 - kFirstPort;  // 64512

// Bytes the generator needs after the L4 header: sequence number and timestamp (UDP only;
// TCP keeps them in its sequence and acknowledgment fields).
inline constexpr size_t kUdpStampLen = 8;
inline constexpr size_t kFcsLen = 4;

// A client address range.
struct ClientNet {
  IpAddr base;  // network address (host bits zero)
  uint8_t prefix = 0;
  uint64_t addrs = 0;  // usable addresses (base + 1 ... base + addrs)
};
// "198.18.0.0/15" or "2001:db8:c::/64". IPv4 prefixes 8..30, IPv6 64..126.
absl::StatusOr<ClientNet> ParseClientNet(absl::string_view cidr);

// The MAC the benchmark gives next hop `addr` (see above).
MacAddr NeighborMac(const IpAddr& addr);

// "10.0.0.1:80/tcp" or "[2001:db8::1]:443/udp" -> the config's service, or an error naming it.
absl::StatusOr<dataplane::ServiceKey> ParseServiceText(absl::string_view text);

enum class ProtoFilter : uint8_t { kMix, kTcp, kUdp };
enum class Steering : uint8_t { kFlowId, kSoftRss };

struct ModelOptions {
  uint64_t flows = 1000;                        // established flows
  std::vector<dataplane::ServiceKey> services;  // empty: every service of the config
  ProtoFilter proto = ProtoFilter::kMix;
  ClientNet client_v4;  // defaults filled by Create if family 0
  ClientNet client_v6;
  uint32_t frame_size = 64;      // on the wire, FCS included
  std::optional<uint16_t> vlan;  // 802.1Q VLAN id (PCP 0)
  MacAddr src_mac;               // the generator's port
  MacAddr dst_mac;               // the balancer's port
  uint16_t queues = 1;
  Steering steering = Steering::kFlowId;
};

// One targeted service.
struct GenService {
  dataplane::ServiceKey key;
  std::string name;                        // "10.0.0.1:80/tcp"
  const dataplane::Service* dp = nullptr;  // in the model's snapshot
  dataplane::ForwardMode forward = dataplane::ForwardMode::kDr;  // the service's mode
  uint16_t ip_len = 0;     // IP packet length of every frame of this service
  uint16_t frame_len = 0;  // without FCS
  uint16_t l4_len = 0;
  std::vector<IpAddr> next_hop;  // per dp->backends index: DR: the backend; tunnels: backend or gateway
  std::vector<MacAddr> next_hop_mac;

  // The frame template (frame_builder.h): every byte that is the same for all frames of the
  // service, the per-packet fields zero; and the one's-complement sums (of 16-bit network
  // words, not folded) of the constant parts of the IPv4 header and of the L4 checksum's data
  // (pseudo-header included).
  std::vector<uint8_t> tmpl;
  std::vector<uint8_t> mask;  // over the IP packet: 0x00 on per-packet bytes, 0xFF elsewhere
  uint16_t l2_len = 0;
  uint64_t ip_sum = 0;
  uint64_t l4_sum = 0;
};

struct Neighbor {
  IpAddr addr;
  MacAddr mac;
};

class TrafficModel {
 public:
  // Validates and builds everything (the snapshot with its Maglev tables). The error message
  // says which option or config field to change.
  static absl::StatusOr<std::unique_ptr<const TrafficModel>> Create(const control::Config& config,
                                                                    ModelOptions options);

  const ModelOptions& options() const { return opt_; }
  const dataplane::Snapshot& snapshot() const { return *snap_; }
  size_t num_services() const { return services_.size(); }
  const GenService& service(size_t i) const { return services_[i]; }
  uint64_t flows() const { return opt_.flows; }
  // Flow ids in use are [0, capacity()).
  uint64_t capacity() const { return capacity_; }
  bool is_new(uint64_t flow) const { return flow >= opt_.flows; }
  // The next new-flow id after `flow` (wrapping to flows() at capacity()).
  uint64_t NextNew(uint64_t flow) const { return flow + 1 < capacity_ ? flow + 1 : opt_.flows; }

  size_t ServiceOf(uint64_t flow) const {
    if (flow >> 32 == 0) {  // Lemire's fastmod: no division per packet
      const uint64_t low = service_mod_ * flow;
      return static_cast<size_t>((static_cast<unsigned __int128>(low) * services_.size()) >> 64);
    }
    return static_cast<size_t>(flow % services_.size());
  }
  dataplane::FlowTuple Tuple(uint64_t flow) const;
  // Writes the source address bytes (4 or 16, family of flow's service) of `flow`.
  void SourceAddress(uint64_t flow, uint8_t* out) const;
  uint16_t SourcePort(uint64_t flow) const {
    return static_cast<uint16_t>(kFirstPort + flow % kPortsPerAddr);
  }
  // Decodes a flow id from a source address (4 or 16 bytes, by `family`) and port; false if
  // they are not one of ours. Bounds: reads exactly 4 or 16 bytes at src.
  bool FlowOf(uint8_t family, const uint8_t* src, uint16_t sport, uint64_t* flow) const {
    size_t service;
    return FlowOf(family, src, sport, flow, &service);
  }
  // The same, also giving ServiceOf(*flow).
  bool FlowOf(uint8_t family, const uint8_t* src, uint16_t sport, uint64_t* flow,
              size_t* service) const;

  // The TX queue of a flow (--steer).
  uint16_t QueueOf(uint64_t flow) const;
  // The index into service(ServiceOf(flow)).dp->backends that ecmplb must pick; -1 if none.
  int32_t ExpectedBackend(uint64_t flow) const;

  // Every next hop of the config (backends, gateway; targeted or not) with its MAC, sorted by
  // address, no duplicates.
  std::vector<Neighbor> Neighbors() const;
  // The balancer's host.address (IPv4, host order; 0 if not IPv4): what its own kernel sends
  // from (flow sync, health checks), never test traffic.
  uint32_t host_v4() const;

 private:
  TrafficModel() = default;

  ModelOptions opt_;
  std::unique_ptr<const dataplane::Snapshot> snap_;
  std::vector<GenService> services_;
  uint64_t capacity_ = 0;
  uint64_t service_mod_ = 0;  // ~0 / services + 1 (fastmod constant)
  uint64_t v4_base_ = 0;      // host-order network address
  uint64_t v6_base_lo_ = 0;   // low 64 bits of the IPv6 network address
  std::unique_ptr<ToeplitzHasher> toeplitz_;
  std::vector<IpAddr> all_next_hops_;  // of every service of the config
};

}  // namespace ecmplb::gen
