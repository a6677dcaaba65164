// main.cc: the ecmplb daemon.
//
//   ecmplb [EAL options] -- --config PATH [--port N] [--idle-backoff] ...
//
// EAL first (its options come before `--`), then the daemon's own options, then the
// composition root (daemon.h) runs until SIGTERM (graceful drain), SIGINT, `ecmplbctl drain`
// or --run-seconds; SIGHUP reloads the config file's services (ControlPlane::Reload). Every
// start-up problem is one line on stderr and exit status 1.
#include <cstdio>
#include <string>

#include "daemon/daemon.h"
#include "daemon/options.h"
#include "dataplane/dpdk/engine.h"

namespace {

int Fail(const absl::Status& st) {
  std::fprintf(stderr, "ecmplb: %s\n", std::string(st.message()).c_str());
  ecmplb::dataplane::CleanupEal();
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::StatusOr<int> eal_args = ecmplb::dataplane::InitEal(argc, argv);
  if (!eal_args.ok()) {
    std::fprintf(stderr, "ecmplb: %s\n", std::string(eal_args.status().message()).c_str());
    return 1;
  }
  argc -= *eal_args;
  argv += *eal_args;
  argv[0] = const_cast<char*>("ecmplb");

  auto parsed = ecmplb::daemon::ParseOptions(argc, argv);
  if (!parsed.ok()) return Fail(parsed.status());
  if (parsed->help) {
    std::printf("%s", parsed->help_text.c_str());
    ecmplb::dataplane::CleanupEal();
    return 0;
  }
  auto daemon = ecmplb::daemon::Daemon::Create(parsed->options);
  if (!daemon.ok()) return Fail(daemon.status());
  return (*daemon)->Run();
}
