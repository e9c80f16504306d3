//! tracer's kernel programs: allocator uprobes, mapping and fd syscall tracepoints, and task
//! creation, rename, exec and exit.
//!
//! Every program filters on the traced tgids before touching any other map or the ring, builds
//! its record directly in the reserved ring slot, and counts every failure in `COUNTERS`.
//! Nothing here logs: these programs run on every malloc and free of the target.
#![no_std]
#![no_main]

mod alloc;
mod emit;
mod fd;
mod filter;
mod maps;
mod memo;
mod mmap;
mod sysstack;
mod task;
mod unwind;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any path that could reach here, so this never runs.
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
