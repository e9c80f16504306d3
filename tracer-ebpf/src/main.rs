//! tracer's kernel programs: allocator uprobes, mapping and fd syscall tracepoints, and task
//! creation, rename, exec and exit.
//!
//! Every program filters on the traced tgids before touching any other map or the ring, builds
//! its record directly in the reserved ring slot, and counts every failure in `COUNTERS`.
//! They log (`log`) only under `tracer -vv`: the level is a load-time constant, so with
//! logging off the verifier removes every logging branch.
#![no_std]
#![no_main]

mod alloc;
mod emit;
mod fd;
mod filter;
mod log;
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
