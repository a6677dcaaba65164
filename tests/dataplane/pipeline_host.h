// pipeline_host.h: the pipeline tests' harness: one LB host's worker (snapshot builder,
// snapshot, neighbours, conntrack, pipeline) run one frame at a time, a base configuration
// and a TCP frame maker. Tests only: it allocates.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <set>
#include <vector>

#include "control/config.h"
#include "control/snapshot_builder.h"
#include "dataplane/packet/parse.h"
#include "dataplane/pipeline.h"
#include "tests/dataplane/packet_builder.h"
#include "tests/support/backends.h"

namespace ecmplb::dataplane::pipeline_testing {

using test_support::BackendMac;
using testing::Ip;
using testing::Mac;
using testing::PacketBuilder;

inline const MacAddr kPortMac = Mac("02:00:00:00:00:01");
inline const MacAddr kRouterMac = Mac("02:00:00:00:00:fe");

inline control::Config BaseConfig() {
  auto c = control::ParseConfig(R"({
    "host": {"address": "10.0.0.11", "prefix_length": 24, "mtu": 1500},
    "conntrack": {"capacity": 4096},
    "services": [
      {"vip": "10.100.0.1", "port": 80, "protocol": "tcp", "forward": "dr",
       "backends": [{"id": 1, "address": "10.0.0.21"}, {"id": 2, "address": "10.0.0.22"},
                    {"id": 3, "address": "10.0.0.23"}]},
      {"vip": "10.100.0.1", "port": 53, "protocol": "udp", "forward": "gre",
       "backends": [{"id": 1, "address": "10.0.0.21"}, {"id": 2, "address": "10.0.0.22"}]},
      {"vip": "10.100.0.2", "port": 443, "protocol": "tcp", "forward": "dr", "hash": "source-ip",
       "backends": [{"id": 1, "address": "10.0.0.21"}, {"id": 2, "address": "10.0.0.22"},
                    {"id": 3, "address": "10.0.0.23"}]}
    ]})");
  EXPECT_TRUE(c.ok()) << c.status();
  return *c;
}

// One LB host's worker: builder + snapshot + neighbours + conntrack + pipeline.
class Host {
 public:
  explicit Host(const control::Config& config, bool resolve = true, size_t capacity = 4096,
                PipelineOptions options = {})
      : builder_(kPortMac) {
    conntrack::Options o;
    o.capacity = capacity;
    table_ = *conntrack::Table::Create(o);
    pipeline_ = std::make_unique<Pipeline>(table_.get(), &counters_, &neighbors_, options);
    Apply(config);
    if (resolve) ResolveAll();
  }
  void Apply(const control::Config& config, const std::set<control::BackendRef>& unhealthy = {}) {
    auto s = builder_.Build(config, unhealthy);
    ASSERT_TRUE(s.ok()) << s.status();
    snap_ = std::move(*s);
    counters_.EnsureSlots(snap_->service_slots(), snap_->backend_slots());  // as Engine::Publish
  }
  void ResolveAll() {
    for (const auto& [slot, addr] : builder_.neighbor_slots())
      neighbors_.Set(slot, BackendMac(addr).bytes.data());
  }
  // Runs one packet through the pipeline; returns the verdict and leaves the output in `out`.
  Verdict Run(const std::vector<uint8_t>& in, std::vector<uint8_t>* out = nullptr,
              uint32_t now = 100) {
    std::vector<std::vector<uint8_t>> outs;
    const Verdict v = Burst({in}, &outs, now)[0];
    if (out != nullptr) *out = outs[0];
    return v;
  }
  // Runs frames as one burst; out[i] is frame i as the pipeline left it (empty if held). A
  // held frame's buffer lives on: TakeReleased names it by its number, the count of frames
  // Burst had been given before it (0 for the first frame of the first burst).
  std::vector<Verdict> Burst(const std::vector<std::vector<uint8_t>>& in,
                             std::vector<std::vector<uint8_t>>* out = nullptr,
                             uint32_t now = 100) {
    std::vector<Frame> frames;
    for (const auto& f : in) {
      std::vector<uint8_t>& buf = buffers_.emplace_back(128 + f.size());
      std::copy(f.begin(), f.end(), buf.begin() + 128);
      frames.push_back(Frame{buf.data() + 128, static_cast<uint32_t>(f.size()), 128,
                             reinterpret_cast<void*>(uintptr_t{buffers_.size()})});
    }
    std::vector<Verdict> v(in.size());
    pipeline_->Process(*snap_, frames, now, v);
    if (out != nullptr) out->assign(in.size(), {});
    for (size_t i = 0; i < in.size(); ++i) {
      if (v[i] == Verdict::kHeld) continue;
      if (out != nullptr) (*out)[i].assign(frames[i].data, frames[i].data + frames[i].len);
      // Only held frames need their buffers later.
      std::vector<uint8_t>().swap(buffers_[buffers_.size() - in.size() + i]);
    }
    return v;
  }
  struct ReleasedFrame {
    size_t number;  // as in Burst
    Verdict verdict;
    std::vector<uint8_t> bytes;  // as it left, if kTx
  };
  std::vector<ReleasedFrame> TakeReleased() {
    std::vector<ReleasedFrame> all;
    Frame f[4];
    Verdict v[4];
    while (size_t n = pipeline_->TakeReleased(f, v)) {
      for (size_t i = 0; i < n; ++i) {
        ReleasedFrame r{reinterpret_cast<uintptr_t>(f[i].cookie) - 1, v[i], {}};
        if (v[i] == Verdict::kTx) r.bytes.assign(f[i].data, f[i].data + f[i].len);
        all.push_back(std::move(r));
      }
    }
    return all;
  }
  Pipeline& pipeline() { return *pipeline_; }
  // The backend a TCP/UDP packet went to (DR: by destination MAC; GRE: outer destination).
  IpAddr BackendOf(const std::vector<uint8_t>& out) {
    ParsedPacket p;
    EXPECT_EQ(Parse(out, &p), ParseResult::kOk);
    if (p.proto == inet::ip_proto::kGre) return p.dst;
    IpAddr a = IpAddr::V4(0x0a000000);
    a.bytes[3] = out[5];
    return a;
  }
  uint64_t Count(Counter c) const { return counters_.Get(c); }
  WorkerCounters& counters() { return counters_; }
  NeighborTable& neighbors() { return neighbors_; }
  control::SnapshotBuilder& builder() { return builder_; }
  conntrack::Table& table() { return *table_; }
  const Snapshot& snap() const { return *snap_; }

 private:
  control::SnapshotBuilder builder_;
  std::unique_ptr<const Snapshot> snap_;
  NeighborTable neighbors_;
  WorkerCounters counters_;
  std::unique_ptr<conntrack::Table> table_;
  std::unique_ptr<Pipeline> pipeline_;
  std::deque<std::vector<uint8_t>> buffers_;  // Burst's frames (stable addresses)
};

inline std::vector<uint8_t> Syn(uint16_t sport, const char* client = "192.0.2.7",
                         const char* vip = "10.100.0.1", uint16_t dport = 80,
                         uint8_t flags = 0x02) {
  return PacketBuilder()
      .Eth(kRouterMac, kPortMac)
      .Ipv4(Ip(client), Ip(vip))
      .Df(true)
      .Tcp(sport, dport, flags)
      .Build();
}

}  // namespace ecmplb::dataplane::pipeline_testing
