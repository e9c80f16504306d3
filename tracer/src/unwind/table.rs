//! One module's unwind table: its `.eh_frame` (and `.debug_frame`) call-frame information
//! evaluated with gimli into sorted compact rows (`tracer_common::unwind::row`), the form the
//! kernel programs binary-search.
//!
//! Each row says, from its address up to the next row's, how to find the caller's frame: the
//! CFA (rsp or rbp plus an offset), the return address at CFA − 8, and where rbp was saved.
//! Rules the kernel does not follow (DWARF expressions such as the PLT's, other registers,
//! offsets out of range) become `CFA_UNSUPPORTED` rows and are counted; addresses no FDE covers
//! get `CFA_NONE` rows.

use gimli::{
    BaseAddresses, CfaRule, CieOrFde, DebugFrame, EhFrame, EndianSlice, LittleEndian, RegisterRule,
    UnwindContext, UnwindSection, X86_64,
};
use object::{Object as _, ObjectSection as _, ObjectSegment as _};
use tracer_common::unwind::row;

/// A module's rows and what building them found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    /// Packed rows sorted by address; each holds until the next.
    pub rows: Vec<u64>,
    /// Rows with a rule the kernel does not follow.
    pub unsupported: u64,
    /// Rows left out because their address does not fit 32 bits.
    pub out_of_range: u64,
    /// FDEs that could not be parsed or evaluated.
    pub bad_fdes: u64,
}

/// Loadable segments of an ELF file: (file offset, virtual address, file size).
pub type Segments = Vec<(u64, u64, u64)>;

/// Reads the segments and builds the table of the ELF file `data`. `None` when it is not an
/// ELF file; a table with no rows when it has no call-frame information.
pub fn build(data: &[u8]) -> Option<(Table, Segments)> {
    let file = object::File::parse(data).ok()?;
    let segments = file
        .segments()
        .map(|s| {
            let (off, size) = s.file_range();
            (off, s.address(), size)
        })
        .collect();
    let mut spans = Vec::new();
    let mut table = Table::default();
    let text = file.section_by_name(".text").map(|s| s.address());
    if let Some(sec) = file.section_by_name(".eh_frame") {
        if let Ok(bytes) = sec.data() {
            let mut bases = BaseAddresses::default().set_eh_frame(sec.address());
            if let Some(t) = text {
                bases = bases.set_text(t);
            }
            if let Some(h) = file.section_by_name(".eh_frame_hdr") {
                bases = bases.set_eh_frame_hdr(h.address());
            }
            if let Some(g) = file.section_by_name(".got") {
                bases = bases.set_got(g.address());
            }
            let eh = EhFrame::new(bytes, LittleEndian);
            collect(&eh, &bases, &mut spans, &mut table);
        }
    }
    if let Some(sec) = file.section_by_name(".debug_frame") {
        if let Ok(bytes) = sec.data() {
            let mut df = DebugFrame::new(bytes, LittleEndian);
            df.set_address_size(8);
            let mut extra = Vec::new();
            collect(&df, &BaseAddresses::default(), &mut extra, &mut table);
            // .eh_frame wins where both describe an address: spans are merged in order.
            spans.extend(extra.into_iter().map(|(s, e, r, _)| (s, e, r, 1)));
        }
    }
    table.rows = merge(spans, &mut table.out_of_range);
    Some((table, segments))
}

/// (start, end, rule, source: 0 .eh_frame, 1 .debug_frame)
type Span = (u64, u64, u64, u8);

fn collect<'a, S: UnwindSection<EndianSlice<'a, LittleEndian>>>(
    section: &S,
    bases: &BaseAddresses,
    spans: &mut Vec<Span>,
    table: &mut Table,
) {
    let mut ctx: Box<UnwindContext<usize>> = Box::new(UnwindContext::new());
    let mut entries = section.entries(bases);
    loop {
        let entry = match entries.next() {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(_) => {
                table.bad_fdes += 1;
                break;
            }
        };
        let CieOrFde::Fde(partial) = entry else {
            continue;
        };
        let Ok(fde) = partial.parse(S::cie_from_offset) else {
            table.bad_fdes += 1;
            continue;
        };
        let Ok(mut rows) = fde.rows(section, bases, &mut ctx) else {
            table.bad_fdes += 1;
            continue;
        };
        loop {
            match rows.next_row() {
                Ok(Some(r)) => {
                    let rule = rule_of(r.cfa(), r.register(X86_64::RA), r.register(X86_64::RBP));
                    if row::cfa(rule) == row::CFA_UNSUPPORTED {
                        table.unsupported += 1;
                    }
                    spans.push((r.start_address(), r.end_address(), rule, 0));
                }
                Ok(None) => break,
                Err(_) => {
                    table.bad_fdes += 1;
                    break;
                }
            }
        }
    }
}

/// The packed rule (address bits left 0) of one evaluated row.
fn rule_of(
    cfa: &CfaRule<usize>,
    ra: Option<RegisterRule<usize>>,
    rbp: Option<RegisterRule<usize>>,
) -> u64 {
    let unsupported = row::pack(0, row::CFA_UNSUPPORTED, 0, false, 0);
    match ra {
        Some(RegisterRule::Undefined) => return row::pack(0, row::CFA_END, 0, false, 0),
        Some(RegisterRule::Offset(-8)) => {}
        _ => return unsupported,
    }
    let (kind, offset) = match cfa {
        CfaRule::RegisterAndOffset { register, offset } if *register == X86_64::RSP => {
            (row::CFA_RSP, *offset)
        }
        CfaRule::RegisterAndOffset { register, offset } if *register == X86_64::RBP => {
            (row::CFA_RBP, *offset)
        }
        _ => return unsupported,
    };
    let Ok(offset) = u16::try_from(offset) else {
        return unsupported;
    };
    match rbp {
        None | Some(RegisterRule::Undefined | RegisterRule::SameValue) => {
            row::pack(0, kind, offset, false, 0)
        }
        Some(RegisterRule::Offset(o)) if o % 8 == 0 && i8::try_from(o / 8).is_ok() => {
            row::pack(0, kind, offset, true, (o / 8) as i8)
        }
        _ => unsupported,
    }
}

/// Sorted, non-overlapping rows from the spans: earlier sources win overlaps, a gap between
/// spans gets a `CFA_NONE` row, and a row equal to the one before is left out.
fn merge(mut spans: Vec<Span>, out_of_range: &mut u64) -> Vec<u64> {
    spans.sort_by_key(|s| (s.0, s.3));
    let mut rows: Vec<u64> = Vec::with_capacity(spans.len() + spans.len() / 4);
    let mut covered_to = 0u64;
    let push = |rows: &mut Vec<u64>, pc: u64, rule: u64, out: &mut u64| {
        let Ok(pc) = u32::try_from(pc) else {
            *out += 1;
            return;
        };
        let rule = rule & !0xffff_ffff;
        if rows.last().is_some_and(|last| row::pc(*last) == pc) {
            rows.pop();
        }
        if rows.last().is_some_and(|last| *last & !0xffff_ffff == rule) {
            return;
        }
        rows.push(rule | pc as u64);
    };
    for (start, end, rule, _) in spans {
        if end <= covered_to || end <= start {
            continue;
        }
        let start = start.max(covered_to);
        if covered_to != 0 && start > covered_to {
            push(&mut rows, covered_to, 0, out_of_range);
        }
        push(&mut rows, start, rule, out_of_range);
        covered_to = end;
    }
    if covered_to != 0 {
        push(&mut rows, covered_to, 0, out_of_range);
    }
    rows
}

/// The page index of `rows`: the module page (address / 4096) of its first entry, and per page
/// from there the index of the row in force at the page's start (0 before the first row), one
/// entry past the last page so every page has a next.
pub fn page_index(rows: &[u64]) -> (u32, Vec<u32>) {
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return (0, Vec::new());
    };
    let base = row::pc(*first) >> 12;
    let end = row::pc(*last) >> 12;
    let entries = (base..=end + 1)
        .map(|page| {
            let start = page as u64 * 4096;
            let after = rows.partition_point(|r| row::pc(*r) as u64 <= start);
            after.saturating_sub(1) as u32
        })
        .collect();
    (base, entries)
}

/// The rule in force at `pc` found as the kernel does: the page index bounds a binary search.
pub fn lookup_paged(rows: &[u64], base: u32, pages: &[u32], pc: u64) -> Option<u64> {
    let page = usize::try_from((pc >> 12).checked_sub(base as u64)?).ok()?;
    if page + 1 >= pages.len() {
        return None;
    }
    let lo = pages[page] as usize;
    let hi = (pages[page + 1] as usize + 1).min(rows.len());
    let i = lo + rows[lo..hi].partition_point(|r| row::pc(*r) as u64 <= pc);
    (i > lo).then(|| rows[i - 1])
}

/// The rule in force at module address `pc`, as the kernel finds it.
pub fn lookup(rows: &[u64], pc: u64) -> Option<u64> {
    let pc = u32::try_from(pc).ok()?;
    let i = rows.partition_point(|r| row::pc(*r) <= pc);
    i.checked_sub(1).map(|i| rows[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rsp(off: u16) -> u64 {
        row::pack(0, row::CFA_RSP, off, false, 0)
    }

    #[test]
    fn spans_merge_into_sorted_rows_with_gaps_and_without_repeats() {
        let spans = vec![
            (0x1010, 0x1020, rsp(16), 0),
            (0x1000, 0x1004, rsp(8), 0),
            (0x1004, 0x1010, rsp(16), 0),
            // Overlaps the first: clipped.
            (0x1018, 0x1030, rsp(24), 1),
            (0x2000, 0x2008, rsp(8), 0),
        ];
        let mut oor = 0;
        let rows = merge(spans, &mut oor);
        let got: Vec<(u32, u8, u16)> = rows
            .iter()
            .map(|r| (row::pc(*r), row::cfa(*r), row::cfa_offset(*r)))
            .collect();
        assert_eq!(
            got,
            vec![
                (0x1000, row::CFA_RSP, 8),
                (0x1004, row::CFA_RSP, 16),
                (0x1020, row::CFA_RSP, 24),
                (0x1030, row::CFA_NONE, 0),
                (0x2000, row::CFA_RSP, 8),
                (0x2008, row::CFA_NONE, 0),
            ]
        );
        assert_eq!(oor, 0);
        assert_eq!(lookup(&rows, 0x1007).map(row::cfa_offset), Some(16));
        assert_eq!(lookup(&rows, 0x0fff), None);
        assert_eq!(lookup(&rows, 0x1500).map(row::cfa), Some(row::CFA_NONE));
    }

    #[test]
    fn rules_pack_rbp_saves_and_mark_what_the_kernel_cannot_follow() {
        let cfa = CfaRule::RegisterAndOffset {
            register: X86_64::RSP,
            offset: 16,
        };
        let r = rule_of(
            &cfa,
            Some(RegisterRule::Offset(-8)),
            Some(RegisterRule::Offset(-16)),
        );
        assert_eq!(
            (row::cfa(r), row::cfa_offset(r), row::rbp_saved(r)),
            (row::CFA_RSP, 16, true)
        );
        assert_eq!(row::rbp_words(r), -2);
        let end = rule_of(&cfa, Some(RegisterRule::Undefined), None);
        assert_eq!(row::cfa(end), row::CFA_END);
        let expr = CfaRule::Expression(gimli::UnwindExpression {
            offset: 0,
            length: 1,
        });
        assert_eq!(
            row::cfa(rule_of(&expr, Some(RegisterRule::Offset(-8)), None)),
            row::CFA_UNSUPPORTED
        );
        let big = CfaRule::RegisterAndOffset {
            register: X86_64::RSP,
            offset: 1 << 20,
        };
        assert_eq!(
            row::cfa(rule_of(&big, Some(RegisterRule::Offset(-8)), None)),
            row::CFA_UNSUPPORTED
        );
    }

    #[test]
    fn the_page_index_finds_the_same_rows_as_a_search_of_all() {
        let exe = std::env::current_exe().expect("test binary");
        let data = std::fs::read(&exe).expect("read test binary");
        let (table, _) = build(&data).expect("an ELF file");
        let (base, pages) = page_index(&table.rows);
        assert!(!pages.is_empty());
        let first = row::pc(table.rows[0]) as u64;
        let last = row::pc(*table.rows.last().expect("rows")) as u64;
        let mut pc = first.saturating_sub(100);
        while pc < last + 5000 {
            // No row and a no-information row end a walk alike.
            let known = |r: Option<u64>| r.filter(|r| row::cfa(*r) != row::CFA_NONE);
            assert_eq!(
                known(lookup_paged(&table.rows, base, &pages, pc)),
                known(lookup(&table.rows, pc)),
                "pc {pc:#x}"
            );
            pc += 37;
        }
    }

    /// The test binary's own table: every row sorted, and a function of this file found.
    #[test]
    fn the_test_binarys_own_table_covers_its_functions() {
        let exe = std::env::current_exe().expect("test binary");
        let data = std::fs::read(&exe).expect("read test binary");
        let (table, segments) = build(&data).expect("an ELF file");
        assert!(table.rows.len() > 1000, "{} rows", table.rows.len());
        assert!(table.rows.windows(2).all(|w| row::pc(w[0]) < row::pc(w[1])));
        assert!(!segments.is_empty());
        assert_eq!(table.bad_fdes, 0);
        let file = object::File::parse(&*data).expect("parse");
        use object::ObjectSymbol as _;
        let sym = file
            .symbols()
            .find(|s| {
                s.name()
                    .is_ok_and(|n| n.contains("spans_merge_into_sorted_rows"))
            })
            .expect("symbol of a test function");
        let r = lookup(&table.rows, sym.address()).expect("a row at the function");
        // At a function's first instruction the return address is at the stack pointer.
        assert_eq!((row::cfa(r), row::cfa_offset(r)), (row::CFA_RSP, 8));
    }
}
