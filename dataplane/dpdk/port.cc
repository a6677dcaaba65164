// port.cc: data and exception port bring-up (see port.h).
#include "dataplane/dpdk/port.h"

#include <rte_bus_vdev.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "dataplane/rss.h"

namespace ecmplb::dataplane {

std::string PortName(uint16_t port_id) {
  char name[RTE_ETH_NAME_MAX_LEN] = {};
  if (rte_eth_dev_get_name_by_port(port_id, name) != 0) return absl::StrCat("port ", port_id);
  return absl::StrCat("port ", port_id, " (", name, ")");
}

bool QueuesArePaired(uint16_t port_id) {
  rte_eth_dev_info info;
  if (rte_eth_dev_info_get(port_id, &info) != 0 || info.driver_name == nullptr) return false;
  return std::string(info.driver_name) == "net_af_packet";
}

absl::Status StartPort(uint16_t port_id, const PortConfig& cfg, rte_mempool* pool) {
  std::string who = PortName(port_id);
  rte_eth_dev_info info;
  if (int rc = rte_eth_dev_info_get(port_id, &info); rc != 0) {
    return absl::InternalError(absl::StrCat(who, ": cannot read device info: ", rte_strerror(-rc)));
  }
  // Too few queues: one line saying what to change.
  auto too_few = [&](const char* kind, uint16_t offered, uint16_t needed, const char* why) {
    return absl::FailedPreconditionError(absl::StrCat(
        who, " offers ", offered, " ", kind, " queues, ", needed, " needed (", why,
        "): use fewer worker lcores, or give the vdev more queues (e.g. qpairs=", cfg.tx_queues,
        " for net_af_packet)"));
  };
  if (info.max_rx_queues < cfg.rx_queues) {
    return too_few("RX", info.max_rx_queues, cfg.rx_queues, "one per worker");
  }
  if (info.max_tx_queues < cfg.tx_queues) {
    return too_few("TX", info.max_tx_queues, cfg.tx_queues,
                   "one per worker + one for the exception path");
  }
  rte_eth_conf conf;
  std::memset(&conf, 0, sizeof(conf));
  // ecmplb's key, repeated to the port's key length (40 bytes on most NICs, 52 on some).
  uint8_t key[256];
  uint8_t key_len = info.hash_key_size != 0 ? info.hash_key_size : kRssKeyLength;
  for (unsigned i = 0; i < key_len; ++i) key[i] = kRssKey[i % kRssKeyLength];
  const bool use_rss = cfg.rx_queues > 1 && cfg.rss;
  if (use_rss) {
    const uint64_t l3 = RTE_ETH_RSS_IPV4 | RTE_ETH_RSS_IPV6;
    const uint64_t want = l3 | RTE_ETH_RSS_FRAG_IPV4 | RTE_ETH_RSS_FRAG_IPV6 |
                          RTE_ETH_RSS_NONFRAG_IPV4_TCP | RTE_ETH_RSS_NONFRAG_IPV4_UDP |
                          RTE_ETH_RSS_NONFRAG_IPV6_TCP | RTE_ETH_RSS_NONFRAG_IPV6_UDP;
    const uint64_t have = want & info.flow_type_rss_offloads;
    if ((have & (l3 | RTE_ETH_RSS_NONFRAG_IPV4_TCP | RTE_ETH_RSS_NONFRAG_IPV6_TCP)) == 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          who,
          " cannot spread flows over queues (no RSS for IPv4/IPv6): run a single worker lcore, "
          "or let the peer choose the queue (--rx-steering=peer, e.g. the traffic generator on "
          "memif)"));
    }
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_key = key;
    conf.rx_adv_conf.rss_conf.rss_key_len = key_len;
    conf.rx_adv_conf.rss_conf.rss_hf = have;
  }
  if (cfg.rx_interrupts) conf.intr_conf.rxq = 1;
  if (int rc = rte_eth_dev_configure(port_id, cfg.rx_queues, cfg.tx_queues, &conf); rc != 0) {
    return absl::FailedPreconditionError(absl::StrCat(who, ": configure with ", cfg.rx_queues,
                                                      " RX / ", cfg.tx_queues,
                                                      " TX queues failed: ", rte_strerror(-rc)));
  }
  uint16_t rx_desc = cfg.rx_desc, tx_desc = cfg.tx_desc;
  if (int rc = rte_eth_dev_adjust_nb_rx_tx_desc(port_id, &rx_desc, &tx_desc); rc != 0) {
    return absl::InternalError(
        absl::StrCat(who, ": descriptor counts refused: ", rte_strerror(-rc)));
  }
  int socket = rte_eth_dev_socket_id(port_id);
  if (socket < 0) socket = 0;
  for (uint16_t q = 0; q < cfg.rx_queues; ++q) {
    if (int rc = rte_eth_rx_queue_setup(port_id, q, rx_desc, socket, nullptr, pool); rc != 0) {
      return absl::InternalError(
          absl::StrCat(who, ": RX queue ", q, " setup failed: ", rte_strerror(-rc)));
    }
  }
  for (uint16_t q = 0; q < cfg.tx_queues; ++q) {
    if (int rc = rte_eth_tx_queue_setup(port_id, q, tx_desc, socket, nullptr); rc != 0) {
      return absl::InternalError(
          absl::StrCat(who, ": TX queue ", q, " setup failed: ", rte_strerror(-rc)));
    }
  }
  if (cfg.mtu != 0) {
    // Not every vdev implements MTU changes; the configured MTU still bounds what we send.
    int rc = rte_eth_dev_set_mtu(port_id, cfg.mtu);
    if (rc != 0 && rc != -ENOTSUP) {
      return absl::FailedPreconditionError(absl::StrCat(who, ": cannot set MTU ", cfg.mtu, ": ",
                                                        rte_strerror(-rc),
                                                        " (change host.mtu in the config)"));
    }
  }
  if (int rc = rte_eth_dev_start(port_id); rc != 0) {
    return absl::InternalError(absl::StrCat(who, ": start failed: ", rte_strerror(-rc)));
  }
  if (cfg.promiscuous) rte_eth_promiscuous_enable(port_id);
  // Best effort: a PMD without the setting, or one that refuses it (an untrusted VF), still
  // forwards; the caller warns (rte_eth_allmulticast_get).
  if (cfg.allmulticast) rte_eth_allmulticast_enable(port_id);
  if (use_rss) {
    // The key must be ours: a peer that steers by rte_softrss (and the operator reading
    // `ecmplbctl show`) relies on it. A PMD that cannot report its key is trusted.
    uint8_t got[256] = {};
    rte_eth_rss_conf rc{};
    rc.rss_key = got;
    rc.rss_key_len = key_len;
    if (rte_eth_dev_rss_hash_conf_get(port_id, &rc) == 0 && rc.rss_key_len == key_len &&
        std::memcmp(got, key, key_len) != 0) {
      rte_eth_dev_stop(port_id);
      return absl::FailedPreconditionError(
          absl::StrCat(who, " did not take ecmplb's RSS key: run a single worker lcore"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<MacAddr> PortMac(uint16_t port_id) {
  rte_ether_addr a;
  if (int rc = rte_eth_macaddr_get(port_id, &a); rc != 0) {
    return absl::InternalError(
        absl::StrCat(PortName(port_id), ": no MAC address: ", rte_strerror(-rc)));
  }
  return MacAddr::FromBytes(a.addr_bytes);
}

absl::StatusOr<uint16_t> CreateTap(const std::string& ifname, const MacAddr& mac) {
  std::string vdev = absl::StrCat("net_tap_", ifname);
  std::string args = absl::StrCat("iface=", ifname, ",mac=", mac.ToString());
  if (int rc = rte_vdev_init(vdev.c_str(), args.c_str()); rc != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create the exception TAP '", ifname, "' (", rte_strerror(-rc),
                     "): run as root with /dev/net/tun, and pick a host.exception_interface name "
                     "that is not in use"));
  }
  uint16_t port_id;
  if (rte_eth_dev_get_port_by_name(vdev.c_str(), &port_id) != 0) {
    return absl::InternalError(absl::StrCat("TAP ", vdev, " created but has no port id"));
  }
  return port_id;
}

absl::StatusOr<uint16_t> FindDataPort(int requested, uint16_t exclude_from, uint16_t exclude_to) {
  uint16_t count = 0, found = 0;
  uint16_t pid;
  RTE_ETH_FOREACH_DEV(pid) {
    if (pid >= exclude_from && pid < exclude_to) continue;
    if (requested >= 0 && pid == requested) return pid;
    ++count;
    found = pid;
  }
  if (requested >= 0) {
    return absl::NotFoundError(absl::StrCat("--port ", requested, ": no such DPDK port"));
  }
  if (count == 0) {
    return absl::FailedPreconditionError(
        "no DPDK data port: bind a NIC to DPDK or give one with --vdev (e.g. "
        "--vdev=net_af_packet0,iface=eth1)");
  }
  if (count > 1) {
    return absl::FailedPreconditionError(
        absl::StrCat(count, " DPDK ports found: choose the data port with --port N"));
  }
  return found;
}

absl::StatusOr<rte_mempool*> CreatePool(const std::string& name, uint32_t mbufs, int socket) {
  rte_mempool* p =
      rte_pktmbuf_pool_create(name.c_str(), mbufs, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, socket);
  if (p == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "cannot create the packet pool (", mbufs, " mbufs): ", rte_strerror(rte_errno),
        "; reserve hugepages (./setup.sh --hugepages 512) or give EAL more memory with -m"));
  }
  return p;
}

}  // namespace ecmplb::dataplane
