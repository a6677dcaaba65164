// options.h: the daemon's own command-line options (those after EAL's `--`), parsed with
// CLI11. Pure: no DPDK, no side effects; tested on plain argv arrays.
//
// Thread-safety: stateless.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace ecmplb::daemon {

struct Options {
  std::string config;  // --config PATH (required)
  int port = -1;       // --port N; -1: the only DPDK port
  bool idle_backoff = false;
  uint32_t idle_sleep_us = 50;
  uint32_t idle_polls = 256;
  uint32_t mbufs = 16383;
  uint16_t rx_desc = 1024;
  uint16_t tx_desc = 1024;
  bool trust_ip_checksum = false;
  bool promiscuous = false;
  // "rss": the port hashes flows to workers; "peer": the sender chooses each flow's queue by
  // dataplane/rss.h's rule (memif with ecmplb-gen, which has no RSS).
  std::string rx_steering = "rss";
  uint32_t housekeeping_us = 100;  // workers expire idle flows at most this often
  double run_seconds = 0;  // stop after this long (tests); 0: run until told to stop
  std::string log_level = "info";  // error | warning | notice | info | debug
};

struct ParsedOptions {
  Options options;
  bool help = false;  // --help was asked for: print `help_text` and exit 0
  std::string help_text;
};

// Parses argv[1..argc) (argv[0] is the program name). Errors are InvalidArgument with one
// line that names the option and ends with how to get help.
absl::StatusOr<ParsedOptions> ParseOptions(int argc, const char* const* argv);

}  // namespace ecmplb::daemon
