/*
 * nnhdl: minimal stand-in for the CMSIS Core "cmsis_compiler.h" header.
 *
 * WHY: the cmsisdsp source distribution carries CMSIS-DSP but not the
 * CMSIS Core headers (core_cm7.h, cmsis_gcc.h).  For the bare-metal QEMU
 * build of CMSIS-DSP we only need the handful of compiler macros and DSP
 * intrinsics the DSP sources use; we take the intrinsics from the
 * compiler's own ACLE header (arm_acle.h), which emits the same single
 * instructions (SMLAD, SMLALD, SSAT, ...) as CMSIS Core does.  On a real
 * Daisy build libDaisy provides the genuine CMSIS Core headers instead.
 */
#ifndef NNHDL_CMSIS_COMPILER_SHIM_H
#define NNHDL_CMSIS_COMPILER_SHIM_H

#include <stdint.h>
#include <arm_acle.h>

#ifndef __ASM
#define __ASM __asm
#endif
#ifndef __INLINE
#define __INLINE inline
#endif
#ifndef __STATIC_INLINE
#define __STATIC_INLINE static inline
#endif
#ifndef __STATIC_FORCEINLINE
#define __STATIC_FORCEINLINE __attribute__((always_inline)) static inline
#endif
#ifndef __WEAK
#define __WEAK __attribute__((weak))
#endif
#ifndef __ALIGNED
#define __ALIGNED(x) __attribute__((aligned(x)))
#endif
#ifndef __PACKED
#define __PACKED __attribute__((packed, aligned(1)))
#endif
#ifndef __PACKED_STRUCT
#define __PACKED_STRUCT struct __attribute__((packed, aligned(1)))
#endif
#ifndef __RESTRICT
#define __RESTRICT __restrict
#endif
#ifndef __NO_RETURN
#define __NO_RETURN __attribute__((__noreturn__))
#endif
#ifndef __USED
#define __USED __attribute__((used))
#endif

__attribute__((always_inline)) static inline uint8_t __CLZ(uint32_t x)
{
    return (uint8_t)(x == 0U ? 32U : (uint32_t)__builtin_clz(x));
}
#define __SSAT(x, n) __ssat((x), (n))
#define __USAT(x, n) __usat((x), (n))
__attribute__((always_inline)) static inline uint32_t __ROR(uint32_t x, uint32_t n)
{
    n %= 32U;
    return n == 0U ? x : (x >> n) | (x << (32U - n));
}

#if defined(__ARM_FEATURE_DSP) && (__ARM_FEATURE_DSP == 1)
#define __QADD(x, y) __qadd((x), (y))
#define __QSUB(x, y) __qsub((x), (y))
#define __QADD8(x, y) ((uint32_t)__qadd8((x), (y)))
#define __QSUB8(x, y) ((uint32_t)__qsub8((x), (y)))
#define __QADD16(x, y) ((uint32_t)__qadd16((x), (y)))
#define __QSUB16(x, y) ((uint32_t)__qsub16((x), (y)))
#define __SHADD16(x, y) ((uint32_t)__shadd16((x), (y)))
#define __SHSUB16(x, y) ((uint32_t)__shsub16((x), (y)))
#define __QASX(x, y) ((uint32_t)__qasx((x), (y)))
#define __QSAX(x, y) ((uint32_t)__qsax((x), (y)))
#define __SHASX(x, y) ((uint32_t)__shasx((x), (y)))
#define __SHSAX(x, y) ((uint32_t)__shsax((x), (y)))
#define __SMUAD(x, y) ((uint32_t)__smuad((x), (y)))
#define __SMUADX(x, y) ((uint32_t)__smuadx((x), (y)))
#define __SMUSD(x, y) ((uint32_t)__smusd((x), (y)))
#define __SMUSDX(x, y) ((uint32_t)__smusdx((x), (y)))
#define __SMLAD(x, y, a) ((uint32_t)__smlad((x), (y), (int32_t)(a)))
#define __SMLADX(x, y, a) ((uint32_t)__smladx((x), (y), (int32_t)(a)))
#define __SMLSDX(x, y, a) ((uint32_t)__smlsdx((x), (y), (int32_t)(a)))
#define __SMLALD(x, y, a) ((uint64_t)__smlald((x), (y), (int64_t)(a)))
#define __SMLALDX(x, y, a) ((uint64_t)__smlaldx((x), (y), (int64_t)(a)))
#define __SXTB16(x) ((uint32_t)__sxtb16(x))
#define __SXTAB16(x, y) ((uint32_t)__sxtab16((x), (y)))
#define __PKHBT(a, b, s) ((((uint32_t)(a)) & 0x0000FFFFUL) | ((((uint32_t)(b)) << (s)) & 0xFFFF0000UL))
#define __PKHTB(a, b, s) ((((uint32_t)(a)) & 0xFFFF0000UL) | ((((uint32_t)(b)) >> (s)) & 0x0000FFFFUL))
__attribute__((always_inline)) static inline int32_t __SMMLA(int32_t x, int32_t y, int32_t a)
{
    return (int32_t)((((int64_t)x * y) + ((int64_t)a << 32)) >> 32);
}
#endif

#endif
