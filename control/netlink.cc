// netlink.cc: rtnetlink requests with libmnl (see netlink.h).
#include "control/netlink.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace ecmplb::control {
namespace {

int FamilyOf(const dataplane::IpAddr& a) {
  return a.is_v6() ? AF_INET6 : AF_INET;
}

struct NeighDump {
  std::vector<Neighbor>* out;
  int ifindex;
};

int NeighAttr(const nlattr* attr, void* data) {
  const nlattr** tb = static_cast<const nlattr**>(data);
  int type = mnl_attr_get_type(attr);
  if (mnl_attr_type_valid(attr, NDA_MAX) < 0) return MNL_CB_OK;
  tb[type] = attr;
  return MNL_CB_OK;
}

int NeighCb(const nlmsghdr* nlh, void* data) {
  auto* d = static_cast<NeighDump*>(data);
  if (nlh->nlmsg_type != RTM_NEWNEIGH && nlh->nlmsg_type != RTM_DELNEIGH) return MNL_CB_OK;
  if (mnl_nlmsg_get_payload_len(nlh) < sizeof(ndmsg)) return MNL_CB_OK;
  const auto* ndm = static_cast<const ndmsg*>(mnl_nlmsg_get_payload(nlh));
  if (ndm->ndm_ifindex != d->ifindex) return MNL_CB_OK;
  if (ndm->ndm_flags & NTF_PROXY) return MNL_CB_OK;  // proxy ARP entries: not a next hop's
  const nlattr* tb[NDA_MAX + 1] = {};
  mnl_attr_parse(nlh, sizeof(*ndm), NeighAttr, tb);
  if (tb[NDA_DST] == nullptr) return MNL_CB_OK;
  Neighbor n;
  const auto* dst = static_cast<const uint8_t*>(mnl_attr_get_payload(tb[NDA_DST]));
  uint16_t dlen = mnl_attr_get_payload_len(tb[NDA_DST]);
  if (ndm->ndm_family == AF_INET && dlen == 4) {
    n.addr = dataplane::IpAddr::V4FromBytes(dst);
  } else if (ndm->ndm_family == AF_INET6 && dlen == 16) {
    n.addr = dataplane::IpAddr::V6FromBytes(dst);
  } else {
    return MNL_CB_OK;
  }
  n.state = nlh->nlmsg_type == RTM_DELNEIGH ? 0 : ndm->ndm_state;
  if (tb[NDA_LLADDR] != nullptr && mnl_attr_get_payload_len(tb[NDA_LLADDR]) == 6) {
    n.mac = dataplane::MacAddr::FromBytes(
        static_cast<const uint8_t*>(mnl_attr_get_payload(tb[NDA_LLADDR])));
  } else {
    n.state &= static_cast<uint16_t>(
        ~(NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT | NUD_NOARP));
  }
  d->out->push_back(n);
  return MNL_CB_OK;
}

struct AddrDump {
  std::vector<dataplane::IpAddr>* out;
  int ifindex;
};

int AddrAttr(const nlattr* attr, void* data) {
  const nlattr** tb = static_cast<const nlattr**>(data);
  if (mnl_attr_type_valid(attr, IFA_MAX) < 0) return MNL_CB_OK;
  tb[mnl_attr_get_type(attr)] = attr;
  return MNL_CB_OK;
}

int AddrCb(const nlmsghdr* nlh, void* data) {
  auto* d = static_cast<AddrDump*>(data);
  const auto* ifa = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(nlh));
  if (static_cast<int>(ifa->ifa_index) != d->ifindex) return MNL_CB_OK;
  const nlattr* tb[IFA_MAX + 1] = {};
  mnl_attr_parse(nlh, sizeof(*ifa), AddrAttr, tb);
  const nlattr* attr = tb[IFA_LOCAL] != nullptr ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
  if (attr == nullptr) return MNL_CB_OK;
  const auto* p = static_cast<const uint8_t*>(mnl_attr_get_payload(attr));
  uint16_t len = mnl_attr_get_payload_len(attr);
  dataplane::IpAddr a;
  if (ifa->ifa_family == AF_INET && len == 4) {
    a = dataplane::IpAddr::V4FromBytes(p);
  } else if (ifa->ifa_family == AF_INET6 && len == 16) {
    a = dataplane::IpAddr::V6FromBytes(p);
  } else {
    return MNL_CB_OK;
  }
  for (const auto& x : *d->out) {
    if (x == a) return MNL_CB_OK;
  }
  d->out->push_back(a);
  return MNL_CB_OK;
}

// Starts a netlink message of `type` with `flags` in `buf` (MNL_SOCKET_BUFFER_SIZE bytes) and
// returns its zeroed family header of type Header. (Request and Dump set the sequence number.)
template <typename Header>
Header* PutMessage(char* buf, uint16_t type, uint16_t flags, nlmsghdr** nlh) {
  *nlh = mnl_nlmsg_put_header(buf);
  (*nlh)->nlmsg_type = type;
  (*nlh)->nlmsg_flags = flags;
  return static_cast<Header*>(mnl_nlmsg_put_extra_header(*nlh, sizeof(Header)));
}

}  // namespace

bool Neighbor::usable() const {
  return (state &
          (NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT | NUD_NOARP)) != 0;
}

absl::StatusOr<std::unique_ptr<Netlink>> Netlink::Open() {
  std::unique_ptr<Netlink> n(new Netlink());
  n->nl_ = mnl_socket_open(NETLINK_ROUTE);
  if (n->nl_ == nullptr)
    return absl::InternalError(absl::StrCat("netlink socket: ", std::strerror(errno)));
  if (mnl_socket_bind(n->nl_, 0, MNL_SOCKET_AUTOPID) < 0) {
    return absl::InternalError(absl::StrCat("netlink bind: ", std::strerror(errno)));
  }
  n->portid_ = mnl_socket_get_portid(n->nl_);
  return n;
}

Netlink::~Netlink() {
  if (nl_ != nullptr) mnl_socket_close(nl_);
}

absl::StatusOr<int> Netlink::IfIndex(const std::string& ifname) const {
  unsigned idx = if_nametoindex(ifname.c_str());
  if (idx == 0)
    return absl::NotFoundError(absl::StrCat("no network interface named '", ifname, "'"));
  return static_cast<int>(idx);
}

// Sends one request with NLM_F_ACK and waits for its ack; the error is errno-style.
absl::Status Netlink::Request(void* buf, const char* what) {
  auto* nlh = static_cast<nlmsghdr*>(buf);
  nlh->nlmsg_seq = seq_++;
  if (mnl_socket_sendto(nl_, nlh, nlh->nlmsg_len) < 0) {
    return absl::InternalError(absl::StrCat(what, ": netlink send: ", std::strerror(errno)));
  }
  std::vector<char> rbuf(MNL_SOCKET_BUFFER_SIZE);
  ssize_t n = mnl_socket_recvfrom(nl_, rbuf.data(), rbuf.size());
  while (n > 0) {
    int rc =
        mnl_cb_run(rbuf.data(), static_cast<size_t>(n), nlh->nlmsg_seq, portid_, nullptr, nullptr);
    if (rc == -1) {
      int e = errno;
      if (e == EEXIST) return absl::AlreadyExistsError(absl::StrCat(what, ": already present"));
      if (e == EADDRNOTAVAIL || e == ENOENT || e == ESRCH)
        return absl::NotFoundError(absl::StrCat(what, ": not present"));
      return absl::InternalError(absl::StrCat(what, ": ", std::strerror(e)));
    }
    if (rc <= MNL_CB_STOP) break;
    n = mnl_socket_recvfrom(nl_, rbuf.data(), rbuf.size());
  }
  return absl::OkStatus();
}

absl::Status Netlink::SetLinkUp(int ifindex) {
  alignas(nlmsghdr) char buf[MNL_SOCKET_BUFFER_SIZE];
  nlmsghdr* nlh = nullptr;
  auto* ifm = PutMessage<ifinfomsg>(buf, RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, &nlh);
  ifm->ifi_family = AF_UNSPEC;
  ifm->ifi_index = ifindex;
  ifm->ifi_flags = IFF_UP;
  ifm->ifi_change = IFF_UP;
  return Request(nlh, "set link up");
}

absl::Status Netlink::AddAddress(int ifindex, const dataplane::IpAddr& addr, uint8_t prefix_len,
                                 bool no_dad) {
  alignas(nlmsghdr) char buf[MNL_SOCKET_BUFFER_SIZE];
  nlmsghdr* nlh = nullptr;
  auto* ifa = PutMessage<ifaddrmsg>(buf, RTM_NEWADDR,
                                    NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, &nlh);
  ifa->ifa_family = static_cast<uint8_t>(FamilyOf(addr));
  ifa->ifa_prefixlen = prefix_len;
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  ifa->ifa_index = static_cast<uint32_t>(ifindex);
  if (no_dad) ifa->ifa_flags = IFA_F_NODAD;
  mnl_attr_put(nlh, IFA_LOCAL, addr.size(), addr.bytes.data());
  mnl_attr_put(nlh, IFA_ADDRESS, addr.size(), addr.bytes.data());
  absl::Status s = Request(nlh, "add address");
  return absl::IsAlreadyExists(s) ? absl::OkStatus() : s;
}

absl::Status Netlink::DelAddress(int ifindex, const dataplane::IpAddr& addr, uint8_t prefix_len) {
  alignas(nlmsghdr) char buf[MNL_SOCKET_BUFFER_SIZE];
  nlmsghdr* nlh = nullptr;
  auto* ifa = PutMessage<ifaddrmsg>(buf, RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK, &nlh);
  ifa->ifa_family = static_cast<uint8_t>(FamilyOf(addr));
  ifa->ifa_prefixlen = prefix_len;
  ifa->ifa_index = static_cast<uint32_t>(ifindex);
  mnl_attr_put(nlh, IFA_LOCAL, addr.size(), addr.bytes.data());
  absl::Status s = Request(nlh, "delete address");
  return absl::IsNotFound(s) ? absl::OkStatus() : s;
}

absl::Status Netlink::Dump(nlmsghdr* nlh, const char* what, DumpCallback cb, void* data) {
  nlh->nlmsg_seq = seq_++;
  if (mnl_socket_sendto(nl_, nlh, nlh->nlmsg_len) < 0) {
    return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
  }
  std::vector<char> rbuf(MNL_SOCKET_BUFFER_SIZE);
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(nl_, rbuf.data(), rbuf.size());
    if (n <= 0) return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
    int rc = mnl_cb_run(rbuf.data(), static_cast<size_t>(n), nlh->nlmsg_seq, portid_, cb, data);
    if (rc == -1) return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
    if (rc <= MNL_CB_STOP) return absl::OkStatus();
  }
}

absl::StatusOr<std::vector<dataplane::IpAddr>> Netlink::ListAddresses(int ifindex) {
  std::vector<dataplane::IpAddr> out;
  alignas(nlmsghdr) char buf[MNL_SOCKET_BUFFER_SIZE];
  nlmsghdr* nlh = nullptr;
  auto* ifa = PutMessage<ifaddrmsg>(buf, RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, &nlh);
  ifa->ifa_family = AF_UNSPEC;
  AddrDump d{&out, ifindex};
  ECMPLB_RETURN_IF_ERROR(Dump(nlh, "address dump", AddrCb, &d));
  return out;
}

absl::StatusOr<std::vector<Neighbor>> Netlink::DumpNeighbors(int ifindex) {
  std::vector<Neighbor> out;
  alignas(nlmsghdr) char buf[MNL_SOCKET_BUFFER_SIZE];
  nlmsghdr* nlh = nullptr;
  auto* ndm = PutMessage<ndmsg>(buf, RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP, &nlh);
  ndm->ndm_family = AF_UNSPEC;
  ndm->ndm_ifindex = ifindex;
  NeighDump d{&out, ifindex};
  ECMPLB_RETURN_IF_ERROR(Dump(nlh, "neighbour dump", NeighCb, &d));
  return out;
}

absl::Status Netlink::ResolveNeighbor(int ifindex, const dataplane::IpAddr& addr) {
  alignas(nlmsghdr) char buf[MNL_SOCKET_BUFFER_SIZE];
  nlmsghdr* nlh = nullptr;
  auto* ndm = PutMessage<ndmsg>(buf, RTM_NEWNEIGH,
                                NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE, &nlh);
  ndm->ndm_family = static_cast<uint8_t>(FamilyOf(addr));
  ndm->ndm_ifindex = ifindex;
  ndm->ndm_state = NUD_NONE;
  ndm->ndm_flags = NTF_USE;
  mnl_attr_put(nlh, NDA_DST, addr.size(), addr.bytes.data());
  return Request(nlh, "resolve neighbour");
}

absl::StatusOr<std::unique_ptr<NeighborEvents>> NeighborEvents::Open(int ifindex) {
  std::unique_ptr<NeighborEvents> e(new NeighborEvents());
  e->ifindex_ = ifindex;
  e->nl_ = mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (e->nl_ == nullptr)
    return absl::InternalError(absl::StrCat("netlink socket: ", std::strerror(errno)));
  // Room for bursts (a whole segment's ARP replies at start): 4 MiB.
  const int rcvbuf = 4 << 20;
  (void)setsockopt(mnl_socket_get_fd(e->nl_), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  if (mnl_socket_bind(e->nl_, RTMGRP_NEIGH, MNL_SOCKET_AUTOPID) < 0) {
    return absl::InternalError(absl::StrCat("netlink bind (neighbour events): ",
                                            std::strerror(errno)));
  }
  return e;
}

NeighborEvents::~NeighborEvents() {
  if (nl_ != nullptr) mnl_socket_close(nl_);
}

int NeighborEvents::fd() const { return mnl_socket_get_fd(nl_); }

void NeighborEvents::Read(std::vector<Neighbor>* out, bool* overflow) {
  alignas(nlmsghdr) char buf[MNL_SOCKET_BUFFER_SIZE];
  NeighDump d{out, ifindex_};
  for (int i = 0; i < 1024; ++i) {  // bounded: the rest waits for the next poll
    const ssize_t n = mnl_socket_recvfrom(nl_, buf, sizeof(buf));
    if (n < 0) {
      if (errno == ENOBUFS) {
        *overflow = true;
        continue;
      }
      return;  // EAGAIN: nothing more
    }
    // Multicast messages: sequence 0, port 0.
    mnl_cb_run(buf, static_cast<size_t>(n), 0, 0, NeighCb, &d);
  }
}

}  // namespace ecmplb::control
