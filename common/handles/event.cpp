#include "common/handles/event.h"

#include <cstdlib>

#include "common/log.h"

namespace sluice::common {

void out_of_memory(const char* call) noexcept {
  SLOG_ERROR("event", "%s failed: out of memory", call);
  std::abort();
}

}  // namespace sluice::common
