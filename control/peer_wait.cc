// peer_wait.cc: see peer_wait.h.
#include "control/peer_wait.h"

#include "absl/strings/str_cat.h"

namespace ecmplb::control {

std::string SilentPeerWait::Step(uint64_t now_ms, uint64_t silent, bool held) {
  gave_up_ = false;
  given_up_ &= silent;  // a peer heard again is waited for at its next silence
  if ((silent & ~given_up_) == 0) {
    ready_since_ms_ = 0;
    return "";
  }
  if (!held) {
    ready_since_ms_ = 0;
  } else if (ready_since_ms_ == 0) {
    ready_since_ms_ = now_ms;
  }
  if (ready_since_ms_ != 0 && now_ms >= ready_since_ms_ + wait_ms_) {
    given_up_ |= silent;
    gave_up_ = true;
    ready_since_ms_ = 0;
    return "";
  }
  return absl::StrCat("waiting for silent flow-sync peers (their flows, by a bulk copy once "
                      "heard; at most ",
                      wait_ms_, " ms once ready)");
}

}  // namespace ecmplb::control
