// gen_fixture.h: the config and model the ecmplb-gen tests share, and a real ecmplb worker
// (SnapshotBuilder + NeighborTable with the generator's MAC rule + conntrack + Pipeline) to
// forward the generator's frames as ecmplb would. Tests only; it allocates.
//
// Thread-safety: one fixture per test.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "bench/gen/traffic_model.h"
#include "conntrack/conntrack.h"
#include "control/config.h"
#include "control/snapshot_builder.h"
#include "dataplane/counters.h"
#include "dataplane/neighbor_table.h"
#include "dataplane/pipeline.h"

namespace ecmplb::gen::testing {

// DR TCP (IPv4), GRE UDP (on-link), GRE TCP with an off-link backend (via the gateway), DR TCP
// (IPv6), GRE UDP with an IPv6 VIP.
inline constexpr const char* kConfig = R"({
  "host": {"address": "10.0.0.11", "prefix_length": 24, "gateway": "10.0.0.1",
           "tunnel_source": "10.0.0.12", "announce": false},
  "services": [
    {"vip": "10.100.0.1", "port": 80, "protocol": "tcp", "forward": "dr", "table_size": 251,
     "backends": [{"id": 1, "address": "10.0.0.21"}, {"id": 2, "address": "10.0.0.22"},
                  {"id": 3, "address": "10.0.0.23"}, {"id": 4, "address": "10.0.0.24"}]},
    {"vip": "10.100.0.2", "port": 53, "protocol": "udp", "forward": "gre", "table_size": 251,
     "backends": [{"id": 1, "address": "10.0.0.31"}, {"id": 2, "address": "10.0.0.32"}]},
    {"vip": "10.100.0.3", "port": 8080, "protocol": "tcp", "forward": "gre", "table_size": 251,
     "backends": [{"id": 1, "address": "192.168.5.1"}, {"id": 2, "address": "192.168.5.2"}]},
    {"vip": "2001:db8::1", "port": 443, "protocol": "tcp", "forward": "dr", "table_size": 251,
     "backends": [{"id": 1, "address": "2001:db8::21"}, {"id": 2, "address": "2001:db8::22"}]},
    {"vip": "2001:db8::2", "port": 53, "protocol": "udp", "forward": "gre", "table_size": 251,
     "backends": [{"id": 1, "address": "10.0.0.41"}, {"id": 2, "address": "10.0.0.42"}]}
  ]})";

inline const MacAddr kBalancerMac{{0x02, 0xaa, 0, 0, 0, 0x01}};
inline const MacAddr kGenMac{{0x02, 0xbb, 0, 0, 0, 0x01}};

inline control::Config TestConfig() {
  auto c = control::ParseConfig(kConfig);
  EXPECT_TRUE(c.ok()) << c.status();
  return *c;
}

inline ModelOptions TestModelOptions(uint64_t flows = 1000) {
  ModelOptions o;
  o.flows = flows;
  o.src_mac = kGenMac;
  o.dst_mac = kBalancerMac;
  return o;
}

inline std::unique_ptr<const TrafficModel> MakeModel(ModelOptions o = TestModelOptions(),
                                                     const control::Config& c = TestConfig()) {
  auto m = TrafficModel::Create(c, o);
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? std::move(*m) : nullptr;
}

// An ecmplb worker on byte buffers, its neighbours resolved with NeighborMac.
class Balancer {
 public:
  explicit Balancer(const control::Config& config) : builder_(kBalancerMac) {
    conntrack::Options o;
    o.capacity = 1 << 16;
    table_ = *conntrack::Table::Create(o);
    pipeline_ = std::make_unique<dataplane::Pipeline>(table_.get(), &counters_, &neighbors_);
    snap_ = *builder_.Build(config);
    for (const auto& [slot, addr] : builder_.neighbor_slots()) {
      neighbors_.Set(slot, NeighborMac(addr).bytes.data());
    }
  }
  // Forwards one frame; returns the output frame (empty unless the verdict is kTx).
  std::vector<uint8_t> Forward(const std::vector<uint8_t>& in) {
    constexpr size_t kHeadroom = 128;
    std::vector<uint8_t> buf(kHeadroom + in.size());
    std::copy(in.begin(), in.end(), buf.begin() + kHeadroom);
    dataplane::Frame f{buf.data() + kHeadroom, static_cast<uint32_t>(in.size()), kHeadroom};
    dataplane::Verdict v;
    pipeline_->Process(*snap_, std::span<dataplane::Frame>(&f, 1), 100,
                       std::span<dataplane::Verdict>(&v, 1));
    if (v != dataplane::Verdict::kTx) return {};
    return std::vector<uint8_t>(f.data, f.data + f.len);
  }

 private:
  control::SnapshotBuilder builder_;
  std::unique_ptr<const dataplane::Snapshot> snap_;
  dataplane::NeighborTable neighbors_;
  dataplane::WorkerCounters counters_;
  std::unique_ptr<conntrack::Table> table_;
  std::unique_ptr<dataplane::Pipeline> pipeline_;
};

}  // namespace ecmplb::gen::testing
