//! A flame graph SVG of live heap bytes per call site, drawn by inferno (the Rust port of
//! flamegraph.pl): the folded stacks of [`crate::export::folded`], roots at the bottom, widths
//! proportional to bytes, with search, zoom and tooltips in the browser.

use std::io::Write;

use inferno::flamegraph::{
    color::{BasicPalette, Palette},
    Options,
};

use crate::{export::text::human_bytes, report::Report};

pub fn write(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    let stacks = crate::export::folded::stacks(report);
    let total = stacks.values().fold(0u64, |a, b| a.saturating_add(*b));
    let lines: Vec<String> = stacks
        .iter()
        .map(|(names, bytes)| format!("{} {bytes}", names.join(";")))
        .collect();
    let mut opts = Options::default();
    opts.title = format!("Live heap bytes by call site: {} total", human_bytes(total));
    opts.count_name = "bytes".into();
    opts.colors = Palette::Basic(BasicPalette::Mem);
    // The same report gives the same file: colours from the names, not at random.
    opts.hash = true;
    opts.deterministic = true;
    if lines.is_empty() {
        // inferno draws no graph of nothing: a page that says so.
        return writeln!(
            out,
            r#"<?xml version="1.0" standalone="no"?>
<svg version="1.1" width="1200" height="60" xmlns="http://www.w3.org/2000/svg" font-family="monospace" font-size="14">
<text x="10" y="30">{}: nothing live</text>
</svg>"#,
            opts.title
        );
    }
    inferno::flamegraph::from_lines(&mut opts, lines.iter().map(String::as_str), out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::fixtures;

    fn svg_of(report: &Report) -> String {
        let mut out = Vec::new();
        write(report, &mut out).expect("svg");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn the_graph_holds_every_live_stack_with_its_bytes_and_can_be_searched() {
        let report = fixtures::demo(10).report.clone();
        let stacks = crate::export::folded::stacks(&report);
        assert!(!stacks.is_empty());
        let svg = svg_of(&report);
        assert!(svg.starts_with("<?xml"), "{svg}");
        for (names, bytes) in &stacks {
            let leaf = names.last().expect("a frame");
            let title = format!("{} ({} bytes", leaf, group_thousands(*bytes));
            assert!(svg.contains(&title), "{title} missing");
        }
        assert!(svg.contains("function search("), "no search");
        // The same report, the same file.
        assert_eq!(svg, svg_of(&report));
    }

    #[test]
    fn nothing_live_still_gives_a_graph() {
        let svg = svg_of(&fixtures::empty(1).report);
        assert!(
            svg.starts_with("<?xml") && svg.contains("nothing live"),
            "{svg}"
        );
    }

    fn group_thousands(n: u64) -> String {
        let s = n.to_string();
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    }
}
