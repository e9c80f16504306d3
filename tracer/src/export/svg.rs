//! A standalone flame graph SVG of live heap bytes (the folded stacks of
//! [`crate::export::folded`]), roots at the bottom, widths proportional to bytes; each box has a
//! `<title>` tooltip with its frame, bytes and share.

use std::{collections::BTreeMap, io::Write};

use crate::{export::text::human_bytes, report::Report};

const WIDTH: f64 = 1200.0;
const ROW: f64 = 16.0;
const PAD: f64 = 10.0;
/// Boxes narrower than this (pixels) are left out.
const MIN_WIDTH: f64 = 0.3;

#[derive(Default)]
struct Node {
    value: u64,
    children: BTreeMap<String, Node>,
}

impl Node {
    fn insert(&mut self, path: &[String], value: u64) {
        self.value += value;
        if let Some((first, rest)) = path.split_first() {
            self.children
                .entry(first.clone())
                .or_default()
                .insert(rest, value);
        }
    }

    fn depth(&self) -> usize {
        1 + self.children.values().map(Node::depth).max().unwrap_or(0)
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A stable warm colour per name.
fn colour(name: &str) -> String {
    let h = name.bytes().fold(2_166_136_261u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(16_777_619)
    });
    format!(
        "rgb({},{},{})",
        205 + (h % 50),
        80 + ((h >> 8) % 120),
        40 + ((h >> 16) % 40)
    )
}

struct Ctx<'a> {
    out: &'a mut dyn Write,
    total: u64,
    height: f64,
}

fn draw(ctx: &mut Ctx<'_>, name: &str, node: &Node, x: f64, depth: usize) -> std::io::Result<()> {
    let w = (WIDTH - 2.0 * PAD) * node.value as f64 / ctx.total.max(1) as f64;
    if w < MIN_WIDTH {
        return Ok(());
    }
    let y = ctx.height - PAD - (depth as f64 + 1.0) * ROW;
    let share = 100.0 * node.value as f64 / ctx.total.max(1) as f64;
    let label: String = {
        let max_chars = ((w - 6.0) / 7.0).max(0.0) as usize;
        if name.chars().count() <= max_chars {
            name.to_string()
        } else if max_chars > 2 {
            name.chars().take(max_chars - 2).collect::<String>() + ".."
        } else {
            String::new()
        }
    };
    writeln!(
        ctx.out,
        r#"<g><title>{} ({}, {share:.2}%)</title><rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{:.1}" fill="{}" rx="2"/><text x="{:.1}" y="{:.1}">{}</text></g>"#,
        escape(name),
        human_bytes(node.value),
        ROW - 1.0,
        colour(name),
        x + 3.0,
        y + ROW - 4.0,
        escape(&label)
    )?;
    let mut cx = x;
    for (child, n) in &node.children {
        draw(ctx, child, n, cx, depth + 1)?;
        cx += (WIDTH - 2.0 * PAD) * n.value as f64 / ctx.total.max(1) as f64;
    }
    Ok(())
}

pub fn write(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    let mut root = Node::default();
    for (path, bytes) in crate::export::folded::stacks(report) {
        root.insert(&path, bytes);
    }
    let depth = root.depth();
    let height = depth as f64 * ROW + 2.0 * PAD + 24.0;
    writeln!(
        out,
        r##"<?xml version="1.0" standalone="no"?>
<svg version="1.1" width="{WIDTH}" height="{height}" xmlns="http://www.w3.org/2000/svg" font-family="monospace" font-size="11">
<rect width="100%" height="100%" fill="#fafafa"/>
<text x="{PAD}" y="20" font-size="14">Live heap bytes by call site: {} total</text>"##,
        human_bytes(root.value)
    )?;
    let mut ctx = Ctx {
        out,
        total: root.value,
        height,
    };
    if root.value > 0 {
        draw(&mut ctx, "all", &root, PAD, 0)?;
    }
    writeln!(ctx.out, "</svg>")
}
