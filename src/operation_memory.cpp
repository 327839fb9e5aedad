// Per-thread recycling of operation memory (see detail/operation_allocator.hpp).
#include <asio_blocking/detail/operation_allocator.hpp>

#include <new>
#include <utility>

namespace asio_blocking::detail {

// Not under AddressSanitizer: it should see each operation's memory freed, to catch a use after.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool recycle_operations = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool recycle_operations = false;
#else
constexpr bool recycle_operations = true;
#endif
#else
constexpr bool recycle_operations = true;
#endif

namespace {

// A thread's cache: a few freed blocks, reused by the next operation of the same size. Two,
// as Asio keeps: a call's operation and, say, the next call made from its handler.
// Trivially destructible, so reading it costs no initialisation check, and it can still be
// read during the thread's exit, after `cleanup` has emptied it.
struct block_cache {
    static constexpr int slots = 2;
    void* blocks[slots] = {};
    std::size_t sizes[slots] = {};
    bool gone = false; // the thread is exiting: memory goes straight back to the heap
    bool cleanup_armed = false;
};

thread_local block_cache cache;

// Frees the cached blocks when the thread exits; constructed when the first block is cached.
struct block_cache_cleanup {
    ~block_cache_cleanup()
    {
        cache.gone = true;
        for (void*& block : cache.blocks)
            ::operator delete(std::exchange(block, nullptr));
    }
};

thread_local block_cache_cleanup cleanup;

} // namespace

void* allocate_operation_memory(std::size_t size)
{
    if constexpr (recycle_operations) {
        block_cache& c = cache;
        for (int i = 0; i < block_cache::slots; ++i) {
            if (c.blocks[i] && c.sizes[i] == size)
                return std::exchange(c.blocks[i], nullptr);
        }
    }
    return ::operator new(size);
}

void deallocate_operation_memory(void* p, std::size_t size) noexcept
{
    if constexpr (recycle_operations) {
        block_cache& c = cache;
        if (!c.gone) {
            for (int i = 0; i < block_cache::slots; ++i) {
                if (!c.blocks[i]) {
                    if (!c.cleanup_armed) {
                        c.cleanup_armed = true;
                        (void)&cleanup; // constructs it: its destructor runs at the thread's exit
                    }
                    c.blocks[i] = p;
                    c.sizes[i] = size;
                    return;
                }
            }
        }
    }
    ::operator delete(p);
}

} // namespace asio_blocking::detail
