// options.cc: see options.h.
#include "daemon/options.h"

#include <CLI/CLI.hpp>

#include "absl/strings/str_cat.h"

namespace ecmplb::daemon {

absl::StatusOr<ParsedOptions> ParseOptions(int argc, const char* const* argv) {
  ParsedOptions out;
  Options& opt = out.options;
  CLI::App app{"ecmplb: DPDK L4 load balancer (DR and GRE, Maglev, per-worker conntrack)",
               "ecmplb"};
  app.add_option("--config", opt.config, "configuration file (JSON)")->required();
  app.add_option("--port", opt.port, "DPDK port id of the data port (default: the only one)");
  app.add_flag("--idle-backoff", opt.idle_backoff,
               "workers sleep after a run of empty polls (to share cores); default: busy polling");
  app.add_option("--idle-sleep-us", opt.idle_sleep_us, "back-off sleep in microseconds")
      ->check(CLI::Range(1u, 100000u));
  app.add_option("--idle-polls", opt.idle_polls, "empty polls before a back-off sleep")
      ->check(CLI::Range(1u, 1000000u));
  app.add_option("--mbufs", opt.mbufs, "mbufs in the packet pool")
      ->check(CLI::Range(1023u, 16777215u));
  app.add_option("--rx-desc", opt.rx_desc, "RX descriptors per queue")
      ->check(CLI::Range(64, 16384));
  app.add_option("--tx-desc", opt.tx_desc, "TX descriptors per queue")
      ->check(CLI::Range(64, 16384));
  app.add_flag("--trust-ip-checksum", opt.trust_ip_checksum, "do not verify IPv4 header checksums");
  app.add_flag(
      "--promiscuous", opt.promiscuous,
      "put the data port in promiscuous mode and forward frames whatever their destination MAC");
  app.add_option("--rx-steering", opt.rx_steering,
                 "how flows reach workers: rss (the NIC hashes with ecmplb's key) or peer (the "
                 "sender puts each flow on its queue by the rule in dataplane/rss.h, e.g. "
                 "ecmplb-gen --steer softrss over memif)")
      ->check(CLI::IsMember({"rss", "peer"}));
  app.add_option("--housekeeping-us", opt.housekeeping_us,
                 "a worker expires idle connections at most once per this many microseconds")
      ->check(CLI::Range(1u, 1000000u));
  app.add_option("--run-seconds", opt.run_seconds, "stop after this many seconds (tests)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--log-level", opt.log_level,
                 "least severe messages logged: error, warning, notice (state changes), info "
                 "(default: also start-up and changes), debug")
      ->check(CLI::IsMember({"error", "warning", "notice", "info", "debug"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) {
      out.help = true;
      out.help_text = app.help();
      return out;
    }
    return absl::InvalidArgumentError(
        absl::StrCat(e.what(), " (see ecmplb [EAL options] -- --help)"));
  }
  return out;
}

}  // namespace ecmplb::daemon
