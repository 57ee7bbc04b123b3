#pragma once
// The deleter every C handle's unique_ptr uses: it calls the library's own free function,
// and skips null as free() does (some C free functions crash on it).
namespace sluice::common {

template <auto Free>
struct CFree {
  template <class T>
  void operator()(T* p) const noexcept {
    if (p) Free(p);
  }
};

}  // namespace sluice::common
