// config.h: ecmplb's configuration model and its JSON form (the config file).
//
// One model serves the config file, the control commands and `ecmplbctl config dump`:
// the host's own settings, the connection tracker's sizing and timeouts, and services with
// their backends. Parsing refuses the whole document on the first error with a message that
// names the offending field (e.g. "services[1].backends[0].weight: must be <= 65535").
// Addresses are kept in canonical text form (inet_ntop of the parsed value).
//
// Thread-safety: plain values; no shared state.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/inet.h"

namespace ecmplb::control {

enum class Protocol : uint8_t { kTcp = inet::ip_proto::kTcp, kUdp = inet::ip_proto::kUdp };
enum class ForwardMode : uint8_t { kDr, kGre, kIpip, kGue };
enum class HashMode : uint8_t { kFiveTuple, kSourceIp };

absl::string_view ProtocolName(Protocol p);        // "tcp" / "udp"
absl::string_view ForwardModeName(ForwardMode m);  // "dr" / "gre" / "ipip" / "gue"
absl::string_view HashModeName(HashMode m);        // "5tuple" / "source-ip"
absl::StatusOr<Protocol> ParseProtocol(absl::string_view s);
absl::StatusOr<ForwardMode> ParseForwardMode(absl::string_view s);
absl::StatusOr<HashMode> ParseHashMode(absl::string_view s);

// Parses an IPv4 or IPv6 address and returns its canonical text (lower-case, compressed).
absl::StatusOr<std::string> CanonicalAddress(absl::string_view text);
bool IsIpv6(absl::string_view canonical_address);

inline constexpr uint32_t kMaxWeight = 65535;
// Per host: services (each has a counter slot, also the connection key's 16-bit service
// index), backends over all services (sorry backends included: each has a counter slot), and
// Maglev table slots over all services (2 bytes each: 4 GiB at the limit; a service's
// table_size, 65,537 unless set, is the lever).
inline constexpr size_t kMaxServices = 65536;
inline constexpr size_t kMaxBackendsPerHost = size_t{1} << 20;
inline constexpr uint64_t kMaxTableSlotsPerHost = uint64_t{1} << 31;
inline constexpr size_t kMaxBackendsPerService = 4096;
inline constexpr uint32_t kMaxBackendId = 65535;
inline constexpr uint32_t kSorryBackendId = 0;  // never a regular backend's id

struct BackendConfig {
  uint32_t id = 0;      // stable id within its service, 1..kMaxBackendId
  std::string address;  // canonical text
  uint16_t port = 0;    // 0: the service's port (DR and the tunnels do not rewrite ports)
  uint32_t weight = 1;  // 0 drains: no new flows, established flows stay
  bool operator==(const BackendConfig&) const = default;
};

// keepalived-like backend check; absent: backends are always considered healthy.
//   tcp     a TCP connect;
//   http    GET `path`: the status must be expect_status, and the body (its first 16 KiB)
//           must hold expect_body when that is set;
//   https   the same over TLS (the backend's certificate is not verified, as keepalived's
//           SSL_GET without a CA; the check tests the service, not its PKI);
//   udp     the datagram `send`; up when a reply comes back that holds `expect` (any reply
//           when empty); an ICMP port unreachable is a failure;
//   dns     a query for `query` (type query_type) over UDP: up on an answer to it with
//           RCODE NOERROR and at least one answer record;
//   script  runs `command` (argv; an absolute path first), with ECMPLB_BACKEND and
//           ECMPLB_PORT in its environment: up when it exits 0 within timeout_ms; killed
//           (by PID) when it runs longer; its first 200 bytes of output are the detail.
struct HealthCheckConfig {
  enum class Type : uint8_t { kTcp, kHttp, kUdp, kDns, kScript, kHttps };
  Type type = Type::kTcp;
  uint16_t port = 0;             // 0: the service port
  std::string path = "/";        // http, https
  uint16_t expect_status = 200;  // http, https
  std::string expect_body;       // http, https: a substring the body must hold ("": not checked)
  std::string send;              // udp: the datagram's payload
  std::string expect;            // udp: a substring the reply must hold ("": any reply)
  std::string query;             // dns: the name asked for
  std::string query_type = "A";  // dns: A, AAAA, NS, SOA, MX, TXT, CNAME, PTR
  std::vector<std::string> command;  // script: argv
  uint32_t interval_ms = 1000;
  uint32_t timeout_ms = 500;
  uint32_t rise = 2;  // successes to come back
  uint32_t fall = 3;  // failures to leave
  bool operator==(const HealthCheckConfig&) const = default;
};
inline constexpr size_t kMaxCheckArgs = 32;     // script: command's arguments
inline constexpr size_t kMaxCheckText = 1024;   // each text field of a check, in bytes
const char* CheckTypeName(HealthCheckConfig::Type t);  // "tcp", "http", ...
// The DNS RR type of a query_type name (RFC 1035 and 3596); 0 for a name not supported.
uint16_t DnsQueryType(absl::string_view name);
// A DNS name as a dns check asks for it: dot-separated labels of 1..63 letters, digits, '-'
// or '_', at most 253 characters; one trailing dot allowed; "." alone is the root.
bool ValidDnsName(absl::string_view name);

struct ServiceConfig {
  std::string vip;  // canonical text
  uint16_t port = 0;
  Protocol protocol = Protocol::kTcp;
  ForwardMode forward = ForwardMode::kDr;
  HashMode hash = HashMode::kFiveTuple;
  uint32_t table_size = 65537;  // Maglev table size, prime
  std::vector<BackendConfig> backends;
  std::optional<HealthCheckConfig> health_check;
  // Takes every new flow while no backend is usable (all failed, drained or removed); the VIP
  // stays announced. Not health-checked. Its id is kSorryBackendId.
  std::optional<BackendConfig> sorry_backend;
  bool admin_up = true;  // false: never announced, even with healthy backends
  bool operator==(const ServiceConfig&) const = default;
  std::string Name() const;  // "10.0.0.1:80/tcp", "[2001:db8::1]:443/tcp"
};

// What the workers let through to the kernel (dataplane/exception_policy.h). OSPF, BFD, ARP
// for the host, health-check replies and BGP are the priority kinds, each bounded per worker
// by priority_pps; everything else shares one host-wide budget of rate_pps (burst `burst`);
// unsolicited TCP/UDP to the host's address is dropped unless its port is in `allow`.
struct ExceptionConfig {
  uint32_t rate_pps = 10000;  // what one TAP write per packet absorbs with room to spare
  uint32_t burst = 1000;
  uint32_t priority_pps = 5000;
  bool drop_unsolicited = true;
  std::vector<std::string> allow;  // "tcp/22", "udp/123": ports at the host's address let through
  bool operator==(const ExceptionConfig&) const = default;
};

// Who may use the control socket besides root (control/access.h): group names, looked up on
// this host when the configuration is parsed (an unknown group refuses the configuration);
// empty: none. The socket file's owner and mode follow (access.h, SocketPermissionsFor).
struct ControlAccessConfig {
  std::string group;            // members may run every command
  std::string read_only_group;  // members may run the read-only commands (commands.h)
  bool operator==(const ControlAccessConfig&) const = default;
};

struct HostConfig {
  std::string address;         // this host's IPv4 address (on the exception interface)
  uint8_t prefix_length = 24;  // of `address`'s subnet; on-link backends are resolved directly
  std::string address6;        // this host's IPv6 address (optional; on the exception interface)
  uint8_t prefix_length6 = 64;  // of `address6`'s subnet
  std::string tunnel_source;   // tunnels' outer source; defaults to `address`
  std::string tunnel_source6;  // ... towards IPv6 backends; defaults to `address6`
  std::string gateway;         // next hop for backends outside the subnet (optional)
  std::string gateway6;        // ... for IPv6 tunnel backends outside address6's subnet
  uint16_t mtu = 1500;         // data port MTU (IP MTU)
  uint16_t gue_port = 6080;    // GUE's UDP destination port (IANA's); backends decapsulate there
  std::string exception_interface = "ecmplb0";  // name of the kernel TAP interface
  std::string control_socket = "/run/ecmplb/ecmplb.sock";
  ControlAccessConfig control;  // host.control: groups allowed on the control socket
  bool announce = true;  // put servable VIPs (/32, /128) on announce_interface
  std::string announce_interface = "lo";
  uint32_t drain_s = 5;            // SIGTERM / drain: withdraw VIPs, forward this long, stop
  uint32_t worker_stall_ms = 500;  // a worker without progress this long makes the host unhealthy
  std::string metrics_listen;      // Prometheus endpoint "ADDRESS:PORT"; empty: off
  bool metrics_per_backend = true;  // false: per-service series only (large hosts)
  ExceptionConfig exception;
  bool operator==(const HostConfig&) const = default;
};

struct ConntrackConfig {
  uint64_t capacity = 1u << 20;  // flows per worker
  uint32_t tcp_established_s = 900;
  uint32_t tcp_syn_s = 60;
  uint32_t tcp_closing_s = 30;
  uint32_t tcp_probation_s = 60;  // TCP first seen mid-stream, until it proves itself
  uint32_t udp_s = 300;
  bool operator==(const ConntrackConfig&) const = default;
};

// IP fragments (dataplane/fragment_table.h), per worker: the datagrams whose first fragment's
// backend is remembered (0: no tracking, a later fragment is dropped), the later fragments held
// while their first one has not come, and how long either is kept. Read at start.
struct FragmentsConfig {
  uint32_t capacity = 1024;
  uint32_t hold = 64;
  uint32_t timeout_s = 2;
  bool operator==(const FragmentsConfig&) const = default;
};

// Flow-state sync with the other LB hosts (control/sync_engine.h): each host sends the flows
// that became established on it to `peers` (UDP to port `port` at their host addresses,
// authenticated and encrypted with the keys of `key_file`), and looks up what they sent when
// a flow the router moved here misses its own table. Off while `peers` is empty. Read at
// start (a change takes effect at the next start).
struct SyncConfig {
  std::vector<std::string> peers;  // the other LB hosts' host.address (IPv4), at most kMaxSyncPeers
  uint16_t port = 7400;            // UDP at every host's address
  std::string key_file;            // "<id> <64 hex>" lines, mode 0600 (control/sync_wire.h)
  uint32_t rate_per_worker = 100000;  // flows a worker may queue per second (the excess is counted)
  uint32_t refresh_s = 60;  // flows active within this period are sent again once per period
  uint64_t peer_capacity = 0;  // peer-table flow slots; 0: conntrack.capacity x workers x peers
  // At start, the host asks its peers for their tables (TCP to the same port) and announces
  // its VIPs only once every peer answered, refused or bulk_timeout_s passed; false: it
  // announces without waiting (the copy still arrives).
  bool bulk_wait = true;
  uint32_t bulk_timeout_s = 5;
  bool operator==(const SyncConfig&) const = default;
};
inline constexpr size_t kMaxSyncPeers = 16;

// Fleet mode (control/fleet.h): the services come from etcd, shared by every LB host of the
// cluster; the local file keeps the host's own settings. Off while `endpoints` is empty.
struct FleetConfig {
  std::vector<std::string> endpoints;  // etcd client URLs, "http://10.0.0.30:2379", tried in turn
  std::string prefix = "/ecmplb";      // keys live under PREFIX/CLUSTER/
  std::string cluster;                 // required in fleet mode
  std::string host_name;               // this host's status key; default host.address
  // The last applied revision, kept on disk so that a host restarted while etcd is down
  // serves its last good state.
  std::string cache_file = "/var/lib/ecmplb/fleet-cache.json";
  uint32_t grace_s = 5;          // behind the fleet this long -> withdraw
  uint32_t min_announcing = 1;   // never withdraw when fewer other hosts announce
  uint32_t lease_ttl_s = 10;     // the status key's lease: how soon a dead host's status goes
  // TLS to etcd (https:// endpoints): the CA to trust, and a client certificate and key.
  std::string ca_file, cert_file, key_file;
  bool enabled() const { return !endpoints.empty(); }
  bool operator==(const FleetConfig&) const = default;
};

struct Config {
  HostConfig host;
  ConntrackConfig conntrack;
  FragmentsConfig fragments;
  SyncConfig sync;
  FleetConfig fleet;
  std::vector<ServiceConfig> services;
  bool operator==(const Config&) const = default;

  // Finds a service by VIP (any text form), port and protocol; nullptr if absent.
  const ServiceConfig* FindService(absl::string_view vip, uint16_t port, Protocol proto) const;
};

// Checks every cross-field rule (unique services, unique backend ids and addresses within a
// service, prime table sizes, address families, host settings). Parse calls it.
absl::Status Validate(const Config& config);
// The same, with the per-service rules applied only to the services for which `check(i)` is
// true: the others are known to pass them (a running configuration's unchanged services).
// The rules across services (unique services, per-host totals) and the host's always run.
absl::Status ValidateServices(const Config& config, const std::function<bool(size_t)>& check);
// After an edit of one service of a valid configuration: the host's rules, the per-host
// totals, and the rules of services[*changed] (none for a removal). The caller keeps
// services unique (an edit never changes a service's key; an added one is new).
absl::Status ValidateServiceEdit(const Config& config, std::optional<size_t> changed);

absl::StatusOr<Config> ParseConfig(absl::string_view json_text);
// "tcp/22" -> (kTcp, 22); host.exception.allow's entries.
absl::StatusOr<std::pair<Protocol, uint16_t>> ParseAllowedPort(absl::string_view text);
absl::StatusOr<Config> LoadConfigFile(const std::string& path);
std::string SerializeConfig(const Config& config);  // pretty JSON, stable field order
// The services alone, as the config file's `services` array (compact JSON; fleet blobs).
std::string SerializeServices(const std::vector<ServiceConfig>& services);
// `host`'s configuration with its services replaced by `services_array`, a JSON array as in
// the config file, validated whole exactly as a config file (errors name the field, e.g.
// "services[3].backends[0].weight: ..."). A fleet revision becomes a candidate this way.
absl::StatusOr<Config> WithServices(const Config& host, absl::string_view services_array);
// Writes atomically: temporary file in the same folder, fsync, rename, fsync the folder.
absl::Status SaveConfigFile(const Config& config, const std::string& path);
absl::Status WriteConfigText(const std::string& text, const std::string& path);  // the same
absl::StatusOr<std::string> ReadConfigText(const std::string& path);  // NotFound: unreadable

// What a reload (ControlPlane::Reload) cannot apply: only `services` change live; host,
// conntrack, fragments and sync are read once at start (addresses and the exception
// interface are configured into the kernel, tables are sized, sockets are bound). The fields
// outside `services` whose values differ, as paths ("host.address", "conntrack.capacity");
// empty: `candidate` may be reloaded.
std::vector<std::string> RestartOnlyChanges(const Config& running, const Config& candidate);

}  // namespace ecmplb::control
