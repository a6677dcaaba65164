// options.h: ecmplb-gen's command line (the part after EAL's `--`), parsed with CLI11 and
// turned into the model's and checker's settings. Pure: no DPDK, testable.
//
// Thread-safety: plain values; parse on the main thread before starting the loops.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/gen/checker.h"
#include "bench/gen/flood.h"
#include "bench/gen/traffic_model.h"

namespace ecmplb::gen {

struct GenOptions {
  std::string config;
  std::vector<std::string> services;  // VIP:PORT/PROTO; empty: all
  uint64_t flows = 1000;
  double new_share = 0.0;
  double flood_share = 0.0;        // share of the frames sent that are flood (flood.h)
  std::vector<std::string> flood;  // --flood kinds (comma lists kept as given); empty: all
  std::string flood_net = kDefaultFloodNet;
  std::string proto = "mix";
  uint32_t size = 64;
  int vlan = -1;          // -1: untagged
  double rate = 0.0;      // packets per second, 0: as fast as possible
  double duration = 0.0;  // seconds; 0 with count 0: 10 s
  uint64_t count = 0;     // packets; 0: until duration
  std::vector<std::string> client_nets;
  std::string src_mac;  // default: the port's MAC
  std::string dst_mac;  // required (except --neighbors)
  uint16_t queues = 1;
  // RX queues on the port (0: as many as TX queues). memif pairs the client's RX queue i with
  // the server's TX queue i and has no ring for a server TX queue beyond the client's RX
  // queues: against ecmplb (W workers: W + 1 TX queues, the last one the exception path's)
  // give --rx-queues W+1.
  uint16_t rx_queues = 0;
  // Run one trial per line read from stdin (each line: options that override the command
  // line's, e.g. "--rate 1000000 --duration 5"), on one port set-up: no memif reconnect
  // between trials. Prints one JSON line per trial. --queues/--rx-queues/--port fixed.
  bool trials_from_stdin = false;
  std::string steer = "flow";
  std::string check;  // "all", "sample:N"; empty: all at --rate <= 1 Mpps, else sample:16
  std::string expect = "balancer";
  std::string pcap;
  uint64_t pcap_count = 0;  // 0: --count, or 1,000,000
  bool json = false;
  bool neighbors = false;
  uint16_t port = 0;
  uint32_t mbufs = 0;  // 0: sized from queues and descriptors
  uint16_t rx_desc = 1024;
  uint16_t tx_desc = 1024;
  double drain_ms = 100.0;
  double link_wait_s = 10.0;
  bool no_src_mac_check = false;

  bool help = false;
  std::string help_text;
};

// argv[0] is the program name; the rest are the generator's options.
absl::StatusOr<GenOptions> ParseGenOptions(int argc, const char* const* argv);

// The model's settings (src_mac: the port's MAC unless --src-mac is given).
absl::StatusOr<ModelOptions> ToModelOptions(const GenOptions& o, const MacAddr& port_mac);
// The checker's settings: --check, --expect, and the flood net when --flood-share > 0.
absl::StatusOr<CheckerOptions> ToCheckerOptions(const GenOptions& o);
// The flood's settings (--flood-share, --flood, --flood-net); errors name the option.
absl::StatusOr<FloodOptions> ToFloodOptions(const GenOptions& o);
// Effective run length: duration in seconds (0: none) and packet count (0: none).
double EffectiveDuration(const GenOptions& o);
uint64_t EffectivePcapCount(const GenOptions& o);

}  // namespace ecmplb::gen
