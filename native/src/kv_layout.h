// The KV cache layout a scorer or a generate call runs in (their kvLayout option).
#pragma once

namespace msr {

// Auto picks per call; the others force a layout (results do not depend on it).
enum class KvLayout { Auto, Unified, PerSequence };

}  // namespace msr
