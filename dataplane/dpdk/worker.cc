// worker.cc: the worker loop and the exception forwarder (see worker.h).
#include "dataplane/dpdk/worker.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_pause.h>

namespace ecmplb::dataplane {

void RteFree::operator()(void* p) const {
  rte_free(p);
}

namespace {

// Sends `n` packets on (port, queue); frees and counts what the queue did not take.
inline void SendOrFree(uint16_t port, uint16_t queue, rte_mbuf** pkts, uint16_t n,
                       WorkerCounters* c, Counter drop) {
  if (n == 0) return;
  uint16_t sent = rte_eth_tx_burst(port, queue, pkts, n);
  if (sent < n) {
    rte_pktmbuf_free_bulk(pkts + sent, n - sent);
    c->Add(drop, n - sent);
  }
}

// Applies a forwarded frame's new start and length (a tunnel moved it into the headroom).
inline void ApplyFrame(rte_mbuf* m, const Frame& f) {
  uint8_t* old = rte_pktmbuf_mtod(m, uint8_t*);
  m->data_off = static_cast<uint16_t>(m->data_off - (old - f.data));
  m->data_len = static_cast<uint16_t>(f.len);
  m->pkt_len = f.len;
}

// Sends or frees the held fragments whose fate the pipeline decided (Pipeline::TakeReleased).
void FlushReleased(Worker* w, WorkerCounters* c) {
  Frame frames[kBurstSize];
  Verdict verdicts[kBurstSize];
  size_t n;
  while ((n = w->pipeline->TakeReleased(frames, verdicts)) != 0) {
    rte_mbuf* tx[kBurstSize];
    rte_mbuf* drop[kBurstSize];
    uint16_t ntx = 0, ndrop = 0;
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; ++i) {
      rte_mbuf* m = static_cast<rte_mbuf*>(frames[i].cookie);
      if (verdicts[i] == Verdict::kTx) {
        ApplyFrame(m, frames[i]);
        bytes += frames[i].len;
        tx[ntx++] = m;
      } else {
        drop[ndrop++] = m;  // a released frame is forwarded or dropped, nothing else
      }
    }
    c->Add(Counter::tx_packets, ntx);
    c->Add(Counter::tx_bytes, bytes);
    SendOrFree(w->port, static_cast<uint16_t>(w->id), tx, ntx, c, Counter::drop_tx_full);
    if (ndrop) rte_pktmbuf_free_bulk(drop, ndrop);
  }
}

}  // namespace

int WorkerMain(void* arg) {
  Worker* w = static_cast<Worker*>(arg);
  WorkerCounters* c = w->counters.get();
  const uint64_t tsc_hz = rte_get_tsc_hz();
  rte_mbuf* rx[kBurstSize];
  rte_mbuf* tx[kBurstSize];
  rte_mbuf* exc[kBurstSize];
  rte_mbuf* drop[kBurstSize];
  Frame frames[kBurstSize];
  Verdict verdicts[kBurstSize];
  const Snapshot* seen = nullptr;
  uint32_t empty_polls = 0;
  uint64_t beat = 0;
  size_t next_queue = 0;
  const uint64_t housekeeping_cycles = tsc_hz * w->idle.housekeeping_us / 1000000;
  uint64_t next_housekeeping = 0;
  // Expiry on a time budget; returns the TSC it read (the loop reuses it).
  auto housekeeping = [&](uint64_t now_tsc, uint32_t now_s) {
    if (now_tsc < next_housekeeping) return;
    next_housekeeping = now_tsc + housekeeping_cycles;
    w->pipeline->Housekeeping(now_s);
    if (w->pipeline->released() != 0) FlushReleased(w, c);
  };

  w->publisher->Online(w->id);
  while (!w->stop->load(std::memory_order_relaxed)) {
    if (w->fault_stall_ms.load(std::memory_order_relaxed) != 0) {
      const uint64_t end = rte_rdtsc() + w->fault_stall_ms.exchange(0) * tsc_hz / 1000;
      while (rte_rdtsc() < end && !w->stop->load(std::memory_order_relaxed)) rte_pause();
    }
    w->heartbeat.store(++beat, std::memory_order_relaxed);
    const uint64_t now_tsc = rte_rdtsc();
    const uint32_t now_s = static_cast<uint32_t>(now_tsc / tsc_hz);
    // One burst per loop from each of this worker's RX queues in turn.
    const uint16_t queue = w->rx_queues[next_queue];
    next_queue = next_queue + 1 == w->rx_queues.size() ? 0 : next_queue + 1;
    uint16_t n = rte_eth_rx_burst(w->port, queue, rx, kBurstSize);
    if (n == 0) {
      housekeeping(now_tsc, now_s);
      w->publisher->Quiescent(w->id);
      c->Add(Counter::idle_polls);
      if (w->idle.backoff && ++empty_polls >= w->idle.polls_before_sleep * w->rx_queues.size()) {
        empty_polls = 0;
        c->Add(Counter::idle_sleeps);
        w->publisher->Offline(w->id);
        rte_delay_us_sleep(w->idle.sleep_us);
        w->publisher->Online(w->id);
      }
      continue;
    }
    empty_polls = 0;
    const Snapshot* snap = w->publisher->Current();
    if (snap != seen) {
      seen = snap;
      c->Add(Counter::snapshot_changes);
    }

    uint16_t nf = 0, ndrop = 0;
    uint64_t rx_bytes = 0;
    for (uint16_t i = 0; i < n; ++i) {
      rte_mbuf* m = rx[i];
      rx_bytes += m->pkt_len;
      if (m->nb_segs != 1) {
        c->Add(Counter::drop_multi_segment);
        drop[ndrop++] = m;
        continue;
      }
      rx[nf] = m;
      frames[nf] = Frame{rte_pktmbuf_mtod(m, uint8_t*), m->data_len, rte_pktmbuf_headroom(m), m};
      ++nf;
    }
    c->Add(Counter::rx_packets, n);
    c->Add(Counter::rx_bytes, rx_bytes);

    w->pipeline->SetTicks(now_tsc);
    w->pipeline->Process(*snap, std::span<Frame>(frames, nf), now_s,
                         std::span<Verdict>(verdicts, nf));

    uint16_t ntx = 0, nexc = 0;
    uint64_t tx_bytes = 0;
    auto dispatch = [&](rte_mbuf* m, const Frame& f, Verdict v) {
      switch (v) {
        case Verdict::kTx:
          ApplyFrame(m, f);
          tx_bytes += f.len;
          tx[ntx++] = m;
          break;
        case Verdict::kException:
          exc[nexc++] = m;
          break;
        case Verdict::kDrop:
          drop[ndrop++] = m;
          break;
        case Verdict::kHeld:  // the pipeline's until TakeReleased gives it back
          break;
      }
    };
    for (uint16_t i = 0; i < nf; ++i) dispatch(rx[i], frames[i], verdicts[i]);
    c->Add(Counter::tx_packets, ntx);
    c->Add(Counter::tx_bytes, tx_bytes);
    SendOrFree(w->port, static_cast<uint16_t>(w->id), tx, ntx, c, Counter::drop_tx_full);
    SendOrFree(w->exception_port, static_cast<uint16_t>(w->id), exc, nexc, c,
               Counter::drop_exception_full);
    if (ndrop) rte_pktmbuf_free_bulk(drop, ndrop);
    if (w->pipeline->released() != 0) FlushReleased(w, c);
    housekeeping(now_tsc, now_s);
    c->Add(Counter::busy_polls);
    c->Add(Counter::busy_cycles, rte_rdtsc() - now_tsc);
    w->publisher->Quiescent(w->id);
  }
  w->pipeline->ReleaseHeld();
  FlushReleased(w, c);
  w->publisher->Offline(w->id);
  return 0;
}

uint32_t ForwardExceptionBurst(uint16_t exception_port, uint16_t exception_queues,
                               uint16_t data_port, uint16_t tx_queue, WorkerCounters* c) {
  uint32_t moved = 0;
  rte_mbuf* pkts[kBurstSize];
  for (uint16_t q = 0; q < exception_queues; ++q) {
    uint16_t n = rte_eth_rx_burst(exception_port, q, pkts, kBurstSize);
    if (n == 0) continue;
    uint64_t bytes = 0;
    for (uint16_t i = 0; i < n; ++i) bytes += pkts[i]->pkt_len;
    c->Add(Counter::tx_packets, n);
    c->Add(Counter::tx_bytes, bytes);
    SendOrFree(data_port, tx_queue, pkts, n, c, Counter::drop_tx_full);
    moved += n;
  }
  return moved;
}

}  // namespace ecmplb::dataplane
