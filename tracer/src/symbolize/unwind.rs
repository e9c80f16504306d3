//! Unwinds the user stack captured at a syscall, for fd and task events.
//!
//! libc's syscall wrappers and `pthread_create` keep no frame pointer, so the kernel's
//! frame-pointer walk from the syscall skips the program function that called them. The kernel
//! sends the registers, a copy of the stack top and that walk (as frame address / return
//! address pairs); here the copy is unwound with each module's `.eh_frame` call-frame
//! information until it runs out, and the walk is joined where its frame address equals the
//! unwound frame pointer. Frames inside libc are left out, so the first frame is the
//! program's own caller (e.g. the function that called `open` or `pthread_create`).

use std::collections::HashMap;

use gimli::{
    BaseAddresses, CfaRule, EhFrame, LittleEndian, RegisterRule, UnwindContext, UnwindSection as _,
    X86_64,
};
use object::{Object as _, ObjectSection as _, ObjectSegment as _};

use super::maps::ProcMaps;
use crate::{bpf::probes::is_libc_path, event::SysStack};

/// Most frames unwound from the copy.
const MAX_UNWIND: usize = 64;

/// How to get from one frame to its caller, for one address.
#[derive(Clone, Copy, Debug)]
struct Step {
    /// CFA = (rbp if `cfa_from_bp` else rsp) + offset.
    cfa_from_bp: bool,
    cfa_offset: i64,
    /// Return address at CFA + this.
    ra_offset: i64,
    /// Saved rbp at CFA + this, when saved.
    bp_offset: Option<i64>,
}

struct Module {
    data: Vec<u8>,
    eh_frame: std::ops::Range<usize>,
    bases: BaseAddresses,
    /// (file offset, virtual address, file size) of each loadable segment.
    segments: Vec<(u64, u64, u64)>,
    steps: HashMap<u64, Option<Step>>,
}

impl Module {
    fn load(path: &str) -> Option<Self> {
        let data = std::fs::read(path).ok()?;
        let file = object::File::parse(&*data).ok()?;
        let eh = file.section_by_name(".eh_frame")?;
        let (off, size) = eh.file_range()?;
        let mut bases = BaseAddresses::default().set_eh_frame(eh.address());
        if let Some(text) = file.section_by_name(".text") {
            bases = bases.set_text(text.address());
        }
        let segments = file
            .segments()
            .map(|s| {
                let (o, sz) = s.file_range();
                (o, s.address(), sz)
            })
            .collect();
        Some(Self {
            eh_frame: off as usize..(off + size) as usize,
            data,
            bases,
            segments,
            steps: HashMap::new(),
        })
    }

    fn vaddr(&self, file_offset: u64) -> Option<u64> {
        self.segments
            .iter()
            .find(|(o, _, sz)| file_offset >= *o && file_offset < o + sz)
            .map(|(o, va, _)| file_offset - o + va)
    }

    fn step(&mut self, vaddr: u64, ctx: &mut UnwindContext<usize>) -> Option<Step> {
        if let Some(s) = self.steps.get(&vaddr) {
            return *s;
        }
        let eh = EhFrame::new(self.data.get(self.eh_frame.clone())?, LittleEndian);
        let step = eh
            .unwind_info_for_address(&self.bases, ctx, vaddr, EhFrame::cie_from_offset)
            .ok()
            .and_then(|row| {
                let (cfa_from_bp, cfa_offset) = match row.cfa() {
                    CfaRule::RegisterAndOffset { register, offset } if *register == X86_64::RSP => {
                        (false, *offset)
                    }
                    CfaRule::RegisterAndOffset { register, offset } if *register == X86_64::RBP => {
                        (true, *offset)
                    }
                    _ => return None,
                };
                let ra_offset = match row.register(X86_64::RA) {
                    Some(RegisterRule::Offset(o)) => o,
                    _ => return None,
                };
                let bp_offset = match row.register(X86_64::RBP) {
                    Some(RegisterRule::Offset(o)) => Some(o),
                    _ => None,
                };
                Some(Step {
                    cfa_from_bp,
                    cfa_offset,
                    ra_offset,
                    bp_offset,
                })
            });
        self.steps.insert(vaddr, step);
        step
    }
}

/// Loaded `.eh_frame` tables, by module path.
pub struct Unwinder {
    modules: HashMap<String, Option<Module>>,
    ctx: Box<UnwindContext<usize>>,
}

impl Default for Unwinder {
    fn default() -> Self {
        Self::new()
    }
}

fn word(s: &SysStack, addr: u64) -> Option<u64> {
    let off = usize::try_from(addr.checked_sub(s.sp)?).ok()?;
    let b = s.top.get(off..off + 8)?;
    let mut w = [0u8; 8];
    w.copy_from_slice(b);
    Some(u64::from_ne_bytes(w))
}

impl Unwinder {
    pub fn new() -> Self {
        Self {
            modules: HashMap::new(),
            ctx: Box::new(UnwindContext::new()),
        }
    }

    /// Return addresses of `s`, innermost first, libc's own frames left out (unless nothing
    /// else is known).
    pub fn unwind(&mut self, maps: &ProcMaps, s: &SysStack) -> Vec<u64> {
        let mut frames: Vec<u64> = Vec::new();
        let (mut ip, mut sp, mut bp) = (s.ip, s.sp, s.bp);
        for i in 0..MAX_UNWIND {
            // A return address points after its call: look up the call itself.
            let lookup = if i == 0 { ip } else { ip.saturating_sub(1) };
            let Some((path, off)) = maps.file_offset(lookup) else {
                break;
            };
            let module = self
                .modules
                .entry(path.clone())
                .or_insert_with(|| Module::load(&path));
            let Some(module) = module.as_mut() else {
                break;
            };
            let step = module
                .vaddr(off)
                .and_then(|va| module.step(va, &mut self.ctx));
            // Some syscall wrappers end their call-frame information before the syscall (glibc's
            // clone3 does, since the child's frame differs); at the syscall they have pushed
            // nothing, so the return address is at the stack pointer.
            let step = match (step, i) {
                (Some(step), _) => step,
                (None, 0) => Step {
                    cfa_from_bp: false,
                    cfa_offset: 8,
                    ra_offset: -8,
                    bp_offset: None,
                },
                (None, _) => break,
            };
            let base = if step.cfa_from_bp { bp } else { sp };
            let cfa = base.wrapping_add_signed(step.cfa_offset);
            let Some(ra) = word(s, cfa.wrapping_add_signed(step.ra_offset)) else {
                break;
            };
            let new_bp = match step.bp_offset {
                Some(o) => match word(s, cfa.wrapping_add_signed(o)) {
                    Some(v) => v,
                    None => break,
                },
                None => bp,
            };
            if ra == 0 {
                break;
            }
            frames.push(ra);
            ip = ra;
            sp = cfa;
            bp = new_bp;
        }
        // Join the kernel's frame-pointer walk at the unwound frame pointer.
        if let Some(pos) = s.fp_chain.iter().position(|(fp, _)| *fp == bp) {
            frames.extend(s.fp_chain[pos..].iter().map(|(_, ret)| *ret));
        }
        let in_libc = |a: u64| {
            maps.find(a)
                .and_then(|e| e.path.as_deref())
                .is_some_and(is_libc_path)
        };
        let skip = frames.iter().take_while(|a| in_libc(**a)).count();
        if skip < frames.len() {
            frames.drain(..skip);
        }
        frames
    }
}
