// netlink.h: the few rtnetlink operations ecmplb needs, with libmnl: bring a link up, add or
// remove an address (the exception TAP's host address; later the VIPs on `lo`), read the
// kernel's neighbour table of an interface, and ask the kernel to resolve a neighbour
// (RTM_NEWNEIGH with NTF_USE, which makes the kernel send ARP/ND as if it had a packet to send).
//
// Thread-safety: one Netlink object per thread; calls are blocking request/ack round trips
// on the control thread, never on a worker.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "dataplane/packet/headers.h"

struct mnl_socket;

struct nlmsghdr;

namespace ecmplb::control {

struct Neighbor {
  dataplane::IpAddr addr;
  dataplane::MacAddr mac;
  uint16_t state = 0;   // NUD_* bits
  bool usable() const;  // REACHABLE, STALE, DELAY, PROBE, PERMANENT or NOARP with a MAC
};

class Netlink {
 public:
  static absl::StatusOr<std::unique_ptr<Netlink>> Open();
  ~Netlink();

  absl::StatusOr<int> IfIndex(const std::string& ifname) const;
  absl::Status SetLinkUp(int ifindex);
  // AlreadyExists is not an error for AddAddress; NotFound is not an error for DelAddress.
  // `no_dad`: an IPv6 address usable at once (IFA_F_NODAD: no duplicate address detection).
  absl::Status AddAddress(int ifindex, const dataplane::IpAddr& addr, uint8_t prefix_len,
                          bool no_dad = false);
  absl::Status DelAddress(int ifindex, const dataplane::IpAddr& addr, uint8_t prefix_len);
  absl::StatusOr<std::vector<dataplane::IpAddr>> ListAddresses(int ifindex);
  absl::StatusOr<std::vector<Neighbor>> DumpNeighbors(int ifindex);
  absl::Status ResolveNeighbor(int ifindex, const dataplane::IpAddr& addr);

 private:
  Netlink() = default;
  absl::Status Request(void* nlh, const char* what);
  // Sends the dump request `nlh` and runs `cb` on every reply message until the dump ends.
  using DumpCallback = int (*)(const nlmsghdr* nlh, void* data);
  absl::Status Dump(nlmsghdr* nlh, const char* what, DumpCallback cb, void* data);
  mnl_socket* nl_ = nullptr;
  uint32_t portid_ = 0;
  uint32_t seq_ = 1;
};

// The kernel's neighbour changes on one interface as they happen (RTNLGRP_NEIGH), read without
// blocking when fd() is readable: the neighbour table stays in step without dumping it.
class NeighborEvents {
 public:
  static absl::StatusOr<std::unique_ptr<NeighborEvents>> Open(int ifindex);
  ~NeighborEvents();
  int fd() const;
  // Appends every pending change of the interface (a deleted entry comes with state 0: not
  // usable). Sets *overflow when the kernel dropped events (ENOBUFS: the caller resyncs with a
  // dump).
  void Read(std::vector<Neighbor>* out, bool* overflow);

 private:
  NeighborEvents() = default;
  mnl_socket* nl_ = nullptr;
  int ifindex_ = 0;
};

}  // namespace ecmplb::control
