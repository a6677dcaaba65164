// summary.h: the results of one ecmplb-gen run and their two encodings: one JSON object
// (--json, nlohmann) and a human-readable text summary.
//
// Loss = test packets sent - test frames received (received frames that are not test traffic,
// e.g. ARP or OSPF from ecmplb's exception path, or the answers to flood frames, are counted as
// `other` and left out). Flood frames sent (flood.h) are counted apart, never as test packets:
// `tx` is the test traffic, `tx.total_*` and `flood` add the flood.
//
// Thread-safety: plain values; encode after the loops have stopped.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/gen/checker.h"
#include "bench/gen/flood.h"
#include "bench/gen/latency_histogram.h"
#include "bench/gen/options.h"
#include "bench/gen/traffic_model.h"

namespace ecmplb::gen {

struct QueueStats {
  uint64_t tx_packets = 0;  // test frames
  uint64_t tx_bytes = 0;
  uint64_t tx_flood_packets = 0;
  // TX bursts the driver took only partly (ring full); the rest is retried on the next turn.
  uint64_t tx_partial_bursts = 0;
  uint64_t rx_packets = 0;
};

struct PortStats {
  uint64_t ipackets = 0, opackets = 0, imissed = 0, ierrors = 0, oerrors = 0, rx_nombuf = 0;
};

struct RunResult {
  double tx_seconds = 0;     // from first to last TX burst
  double total_seconds = 0;  // including the drain
  uint64_t tx_packets = 0;   // test frames (what loss is computed against)
  uint64_t tx_bytes = 0;     // without FCS
  FloodCounts flood;         // flood frames sent, per kind
  uint64_t new_flows = 0;
  std::vector<QueueStats> queues;
  CheckCounts check;
  LatencyHistogram latency;
  PortStats port;
  std::string pcap_path;
  uint64_t pcap_frames = 0;
  uint32_t lcores = 1;
  std::string port_name;
};

nlohmann::json SummaryJson(const GenOptions& o, const TrafficModel& m, const CheckerOptions& c,
                           const RunResult& r);
std::string SummaryText(const GenOptions& o, const TrafficModel& m, const CheckerOptions& c,
                        const RunResult& r);

}  // namespace ecmplb::gen
