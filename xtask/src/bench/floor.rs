//! The floor: what the kernel's uprobes cost with nothing attached to them but an empty BPF
//! program (`r0 = 0; exit`), at exactly the offsets tracer probes.
//!
//! Why not bpftrace: the floor needs `free` probed where tracer probes it (`free+3`, the first
//! instruction the kernel emulates; `free+0` is single-stepped and ~20× dearer). Debian 12's
//! bpftrace 0.17 is built without the disassembler that checks probe offsets and refuses
//! `uprobe:LIBC:free+3` and the address form `uprobe:LIBC:0x…` alike ("Can't check if uprobe is
//! in proper place"), `--unsafe` or not. So this module loads the empty program itself with
//! raw bpf(2) and perf_event_open(2) — the same attach path libbpf uses for a uprobe without
//! a link — which needs no BPF toolchain, in keeping with xtask building without one.
//!
//! Each probe is a system-wide perf event of the `uprobe` PMU (every process mapping the
//! library hits it, as with tracer's probes); dropping [`Attached`] closes the descriptors,
//! which detaches everything.

use std::{
    ffi::CString,
    fs, io, mem,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
    os::unix::ffi::OsStrExt as _,
    path::Path,
};

use anyhow::{bail, Context as _};
use object::{Object as _, ObjectSegment as _, ObjectSymbol as _};

/// `BPF_PROG_LOAD` command of bpf(2).
const BPF_PROG_LOAD: libc::c_long = 5;
/// `BPF_PROG_TYPE_KPROBE`: the program type of kprobes and uprobes.
const BPF_PROG_TYPE_KPROBE: u32 = 2;
/// `_IOW('$', 8, __u32)`: attach a BPF program to a perf event.
const PERF_EVENT_IOC_SET_BPF: libc::c_ulong = 0x4004_2408;
/// `_IO('$', 0)`.
const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;
/// `PERF_FLAG_FD_CLOEXEC`.
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
/// `PERF_ATTR_SIZE_VER1`: up to and including `config2`, all a uprobe needs.
const PERF_ATTR_SIZE_VER1: u32 = 72;
const UPROBE_PMU: &str = "/sys/bus/event_source/devices/uprobe";

/// `mov64 r0, 0; exit` as eBPF instructions (opcode, registers, offset, immediate).
const EMPTY_PROGRAM: [u64; 2] = [0xb7, 0x95];

/// The head of `union bpf_attr` for `BPF_PROG_LOAD` (include/uapi/linux/bpf.h).
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `struct perf_event_attr` up to `config2` (include/uapi/linux/perf_event.h).
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    kind: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    /// For the uprobe PMU: a pointer to the path of the probed file.
    config1: u64,
    /// For the uprobe PMU: the file offset of the probed instruction.
    config2: u64,
}

const _: () = assert!(mem::size_of::<PerfEventAttr>() == PERF_ATTR_SIZE_VER1 as usize);

/// One probe to place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// Function symbol in the library's dynamic symbol table.
    pub symbol: String,
    /// Bytes from the function's entry.
    pub offset: u64,
    /// A uretprobe (must be at offset 0) rather than a uprobe.
    pub ret: bool,
}

/// Probes attached by [`attach`]; dropping this detaches them.
#[derive(Debug)]
pub struct Attached {
    _events: Vec<OwnedFd>,
    _program: OwnedFd,
}

/// Loads the empty program and attaches it at every site of `library`.
pub fn attach(library: &Path, sites: &[Site]) -> anyhow::Result<Attached> {
    let image = fs::read(library).with_context(|| format!("read {}", library.display()))?;
    let program = load_empty_program()?;
    let pmu = pmu_type()?;
    let retprobe_bit = retprobe_bit()?;
    let path = CString::new(library.as_os_str().as_bytes())
        .with_context(|| format!("{} contains a NUL byte", library.display()))?;
    let mut events = Vec::with_capacity(sites.len());
    for site in sites {
        let entry = file_offset(&image, &site.symbol)
            .with_context(|| format!("find {} in {}", site.symbol, library.display()))?;
        let what = format!(
            "{} {}+{:#x} in {}",
            if site.ret { "uretprobe" } else { "uprobe" },
            site.symbol,
            site.offset,
            library.display()
        );
        let event = open_probe(
            pmu,
            &path,
            entry + site.offset,
            site.ret.then_some(retprobe_bit),
        )
        .with_context(|| format!("perf_event_open {what}"))?;
        // SAFETY: both descriptors are open and owned by this function; the ioctls take
        // an int argument (the program fd, or nothing) and do not retain pointers.
        let attached = unsafe {
            libc::ioctl(
                event.as_raw_fd(),
                PERF_EVENT_IOC_SET_BPF,
                program.as_raw_fd(),
            ) == 0
                && libc::ioctl(event.as_raw_fd(), PERF_EVENT_IOC_ENABLE, 0) == 0
        };
        if !attached {
            return Err(io::Error::last_os_error()).with_context(|| format!("attach {what}"));
        }
        events.push(event);
    }
    Ok(Attached {
        _events: events,
        _program: program,
    })
}

fn load_empty_program() -> anyhow::Result<OwnedFd> {
    let license = c"GPL";
    let mut name = [0u8; 16];
    name[..11].copy_from_slice(b"bench_floor");
    let attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_KPROBE,
        insn_cnt: EMPTY_PROGRAM.len() as u32,
        insns: EMPTY_PROGRAM.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: name,
        ..ProgLoadAttr::default()
    };
    // SAFETY: `attr` is a valid, fully initialised bpf_attr head whose pointers (instructions,
    // license) outlive the call; the size passed is its size, the kernel zero-extends the rest.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &attr as *const ProgLoadAttr,
            mem::size_of::<ProgLoadAttr>() as u32,
        )
    };
    owned_fd(fd).context("load the empty BPF program (bpf BPF_PROG_LOAD)")
}

fn open_probe(
    pmu: u32,
    path: &CString,
    offset: u64,
    retprobe_bit: Option<u32>,
) -> anyhow::Result<OwnedFd> {
    let attr = PerfEventAttr {
        kind: pmu,
        size: PERF_ATTR_SIZE_VER1,
        config: retprobe_bit.map_or(0, |bit| 1 << bit),
        config1: path.as_ptr() as u64,
        config2: offset,
        ..PerfEventAttr::default()
    };
    // SAFETY: `attr` is a valid perf_event_attr of the size it declares; `config1` points to
    // a NUL-terminated path that outlives the call. pid -1 with cpu 0 is the system-wide form
    // for the uprobe PMU (the BPF program runs on every CPU).
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const PerfEventAttr,
            -1 as libc::pid_t,
            0 as libc::c_int,
            -1 as libc::c_int,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    owned_fd(fd)
}

fn owned_fd(ret: libc::c_long) -> anyhow::Result<OwnedFd> {
    if ret < 0 {
        return Err(io::Error::last_os_error().into());
    }
    let fd = i32::try_from(ret).context("descriptor out of range")?;
    // SAFETY: the syscall returned a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The uprobe PMU's perf type number.
fn pmu_type() -> anyhow::Result<u32> {
    let path = format!("{UPROBE_PMU}/type");
    let text = fs::read_to_string(&path).with_context(|| format!("read {path} (uprobe PMU)"))?;
    text.trim()
        .parse()
        .with_context(|| format!("{path}: {text:?} is not a number"))
}

/// The `config` bit that makes a uprobe PMU event a return probe (`config:0` on x86-64).
fn retprobe_bit() -> anyhow::Result<u32> {
    let path = format!("{UPROBE_PMU}/format/retprobe");
    let text = fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    parse_config_bit(&text).with_context(|| format!("{path}: unexpected {text:?}"))
}

fn parse_config_bit(text: &str) -> Option<u32> {
    text.trim().strip_prefix("config:")?.parse().ok()
}

/// The file offset of the entry of the defined dynamic symbol `symbol` (what a uprobe takes).
fn file_offset(image: &[u8], symbol: &str) -> anyhow::Result<u64> {
    let file = object::File::parse(image).context("parse ELF")?;
    let address = file
        .dynamic_symbols()
        .find(|s| s.is_definition() && s.name() == Ok(symbol))
        .map(|s| s.address())
        .with_context(|| format!("no defined dynamic symbol {symbol}"))?;
    for segment in file.segments() {
        let (offset, size) = segment.file_range();
        if (segment.address()..segment.address() + size).contains(&address) {
            return Ok(offset + (address - segment.address()));
        }
    }
    bail!("{symbol} at {address:#x} lies in no loaded segment")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_retprobe_format() {
        assert_eq!(parse_config_bit("config:0\n"), Some(0));
        assert_eq!(parse_config_bit("config:32-63"), None);
    }

    #[test]
    fn empty_program_is_mov_r0_0_exit() {
        let bytes: Vec<u8> = EMPTY_PROGRAM.iter().flat_map(|i| i.to_le_bytes()).collect();
        assert_eq!(
            bytes,
            [0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn finds_the_file_offset_of_malloc_in_our_libc() {
        let maps = fs::read_to_string("/proc/self/maps").expect("read maps");
        let libc = maps
            .lines()
            .filter_map(|l| l.split_whitespace().nth(5))
            .find(|p| p.contains("/libc.so"))
            .expect("this test binary maps a libc");
        let image = fs::read(libc).expect("read libc");
        let malloc = file_offset(&image, "malloc").expect("malloc");
        let free = file_offset(&image, "free").expect("free");
        assert!(malloc > 0 && free > 0 && malloc != free);
        assert!(file_offset(&image, "no_such_symbol_here").is_err());
    }
}
