#pragma once
// A callback bound once, the way libevent binds its own: a plain function and its argument.
// Calling it is one indirect call with nothing to build, copy or allocate, on each of the
// thousands of fires a second of the publish path's flush timer. (std::function costs the
// same indirect call plus an emptiness check per call, and may allocate when it is made.)
#include <type_traits>

namespace sluice::common {

class Callback {
 public:
  Callback(void (*fn)(void*), void* arg) : fn_(fn), arg_(arg) {}

  // Calls `(obj->*F)()` when F is a member function of T, `F(obj)` when F is a function
  // taking a T*. F may be private to the caller: access is checked where F is named.
  //   Timer flush_{base, "amqp flush", Callback::bind<&AmqpConnection::flush>(this)};
  template <auto F, class T>
  static Callback bind(T* obj) {
    return Callback(&thunk<F, T>, obj);
  }

  void operator()() const { fn_(arg_); }

 private:
  template <auto F, class T>
  static void thunk(void* arg) {
    T* obj = static_cast<T*>(arg);
    if constexpr (std::is_member_function_pointer_v<decltype(F)>) {
      (obj->*F)();
    } else {
      F(obj);
    }
  }

  void (*fn_)(void*);
  void* arg_;
};

}  // namespace sluice::common
