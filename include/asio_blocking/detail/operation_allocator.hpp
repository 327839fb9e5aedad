// The allocator of operations whose handler has none of its own: per-thread recycling, like
// Asio's recycling_allocator, but with blocks of the object's exact size.
#ifndef ASIO_BLOCKING_DETAIL_OPERATION_ALLOCATOR_HPP
#define ASIO_BLOCKING_DETAIL_OPERATION_ALLOCATOR_HPP

#include <cstddef>
#include <new>

namespace asio_blocking::detail {

/// A block of `size` bytes, from this thread's cache if it holds one of that size.
void* allocate_operation_memory(std::size_t size);
/// Returns a block from allocate_operation_memory(size) to this thread's cache, or frees it.
void deallocate_operation_memory(void* p, std::size_t size) noexcept;

/// Recycles the memory of this thread's last few operations, as Asio's recycling_allocator
/// does. Asio's adds a byte to every block to remember its size; this one is always told the
/// size, so each block is exactly one object: a 104-byte operation takes a 112-byte malloc
/// chunk instead of 128 (a queued call is one operation, so this is the memory per call).
template <typename T>
class operation_allocator {
public:
    using value_type = T;

    operation_allocator() noexcept = default;
    template <typename U>
    operation_allocator(const operation_allocator<U>&) noexcept
    {
    }

    T* allocate(std::size_t n)
    {
        if constexpr (alignof(T) > __STDCPP_DEFAULT_NEW_ALIGNMENT__)
            return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(alignof(T))));
        else if (n == 1)
            return static_cast<T*>(allocate_operation_memory(sizeof(T)));
        else
            return static_cast<T*>(::operator new(n * sizeof(T)));
    }

    void deallocate(T* p, std::size_t n) noexcept
    {
        if constexpr (alignof(T) > __STDCPP_DEFAULT_NEW_ALIGNMENT__)
            ::operator delete(p, std::align_val_t(alignof(T)));
        else if (n == 1)
            deallocate_operation_memory(p, sizeof(T));
        else
            ::operator delete(p);
    }

    template <typename U>
    bool operator==(const operation_allocator<U>&) const noexcept
    {
        return true;
    }
};

} // namespace asio_blocking::detail

#endif
