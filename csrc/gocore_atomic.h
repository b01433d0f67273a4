/* gocore_atomic.h - C11 atomics named by their memory ordering.
 *
 * Every shared word of the runtime is read and written only through these,
 * so the ordering each access relies on is visible at the call site:
 *   ld_rlx / st_rlx   relaxed: counters and hints whose staleness is harmless
 *   ld_acq / st_rel   acquire/release: publish data written before the store
 *   cas_acq_rel       read-modify-write that both publishes and observes
 *   xchg / fetch_add  acq_rel read-modify-write
 *   fence_seq_cst     orders a store before a later load (Dekker-style:
 *                     "I store my flag, then look at yours")
 */
#ifndef GOCORE_ATOMIC_H
#define GOCORE_ATOMIC_H

#include <stdint.h>
#include <stdatomic.h>

#define GC_DEFINE_ATOMICS(T, name)                                                     \
static inline T ld_rlx_##name(T *p) { return atomic_load_explicit((_Atomic(T) *)p, memory_order_relaxed); } \
static inline T ld_acq_##name(T *p) { return atomic_load_explicit((_Atomic(T) *)p, memory_order_acquire); } \
static inline void st_rlx_##name(T *p, T v) { atomic_store_explicit((_Atomic(T) *)p, v, memory_order_relaxed); } \
static inline void st_rel_##name(T *p, T v) { atomic_store_explicit((_Atomic(T) *)p, v, memory_order_release); } \
static inline T xchg_##name(T *p, T v) { return atomic_exchange_explicit((_Atomic(T) *)p, v, memory_order_acq_rel); } \
static inline int cas_##name(T *p, T old, T new_) {                                    \
    return atomic_compare_exchange_strong_explicit((_Atomic(T) *)p, &old, new_,         \
        memory_order_acq_rel, memory_order_acquire); }

GC_DEFINE_ATOMICS(uint32_t, u32)
GC_DEFINE_ATOMICS(int32_t, i32)
GC_DEFINE_ATOMICS(int64_t, i64)
GC_DEFINE_ATOMICS(void *, ptr)

static inline int32_t fetch_add_i32(int32_t *p, int32_t v) {
    return atomic_fetch_add_explicit((_Atomic(int32_t) *)p, v, memory_order_acq_rel);
}
static inline int64_t fetch_add_i64(int64_t *p, int64_t v) {
    return atomic_fetch_add_explicit((_Atomic(int64_t) *)p, v, memory_order_acq_rel);
}
static inline void fence_seq_cst(void) { atomic_thread_fence(memory_order_seq_cst); }

/* Relaxed add for statistics counters that no decision depends on. */
static inline void add_rlx_i64(int64_t *p, int64_t v) {
    atomic_fetch_add_explicit((_Atomic(int64_t) *)p, v, memory_order_relaxed);
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

#endif
