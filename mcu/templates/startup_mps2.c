/* nnhdl: minimal bare-metal start-up for QEMU mps2-an500 (Cortex-M7).
 * A vector table (initial stack pointer + reset handler), .data/.bss set-up,
 * FPU enable, then main(); semihosting (BKPT 0xAB) for output and exit.
 * No C library start-up is used, so nothing else runs before main(). */
#include <stdint.h>

extern uint32_t __data_load, __data_start, __data_end, __bss_start, __bss_end, __stack_top;
int main(void);
void nnhdl_reset_handler(void);
void nnhdl_semihost_exit(int status);

static void nnhdl_fault_handler(void)
{
    nnhdl_semihost_exit(99);
}

__attribute__((section(".vectors"), used)) static void (*const nnhdl_vectors[16])(void) = {
    (void (*)(void))(&__stack_top), nnhdl_reset_handler, nnhdl_fault_handler, nnhdl_fault_handler,
    nnhdl_fault_handler, nnhdl_fault_handler, nnhdl_fault_handler, 0, 0, 0, 0,
    nnhdl_fault_handler, nnhdl_fault_handler, 0, nnhdl_fault_handler, nnhdl_fault_handler,
};

static int nnhdl_semihost(int op, const void *arg)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void nnhdl_semihost_write0(const char *s)
{
    nnhdl_semihost(0x04, s); /* SYS_WRITE0 */
}

void nnhdl_semihost_exit(int status)
{
    /* SYS_EXIT with ADP_Stopped_ApplicationExit (0x20026); the
       32-bit form cannot pass a status, so a failure is reported as
       an internal error (0x20024) which QEMU turns into exit code 1. */
    nnhdl_semihost(0x18, (const void *)(uintptr_t)(status == 0 ? 0x20026 : 0x20024));
    for (;;) {
    }
}

void nnhdl_reset_handler(void)
{
    uint32_t *src = &__data_load;
    for (uint32_t *dst = &__data_start; dst < &__data_end;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &__bss_start; dst < &__bss_end;) {
        *dst++ = 0;
    }
    /* CPACR: full access to CP10/CP11 (the FPU). */
    *(volatile uint32_t *)0xE000ED88 |= (0xFU << 20);
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    nnhdl_semihost_exit(main());
}
