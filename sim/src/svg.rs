//! Two SVG charts, written directly (no font or renderer dependency, byte-for-byte
//! reproducible): charges against each account's PnL, one panel per policy; and the
//! waterfall per policy as a stacked bar (insurance, profit, principal, shortfall).

use std::fmt::Write;

use crate::report::Report;

const COLORS: [&str; 7] = [
    "#1b9e77", "#66a61e", "#7570b3", "#d95f02", "#e7298a", "#a6761d", "#666666",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Up to `max` account indices, spread evenly over the accounts sorted by PnL (always
/// including the extremes), so every panel shows the same accounts.
fn sample(r: &Report, max: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..r.pnl.len()).collect();
    idx.sort_by_key(|i| (r.pnl[*i], *i));
    if idx.len() <= max {
        return idx;
    }
    let step = idx.len() as f64 / max as f64;
    let mut out: Vec<usize> = (0..max).map(|k| idx[(k as f64 * step) as usize]).collect();
    out.push(*idx.last().unwrap());
    out
}

fn usd_f(atoms: i128) -> f64 {
    atoms as f64 / 1e6
}

fn axis_label(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e3 {
        format!("{:.0}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// Charges (y) against PnL at the final price (x), USDC, one panel per policy.
pub fn charges_chart(r: &Report) -> String {
    let (pw, ph, cols) = (360.0, 260.0, 4usize);
    let rows = r.policies.len().div_ceil(cols);
    let (w, h) = (pw * cols as f64 + 40.0, ph * rows as f64 + 70.0);
    let pick = sample(r, 1_500);
    // Axes span the 1st–99th percentiles so a few whales do not flatten everyone else;
    // points beyond are drawn on the edge.
    let mut xs: Vec<f64> = pick.iter().map(|i| usd_f(r.pnl[*i])).collect();
    xs.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    let q = |v: &[f64], f: f64| v[((v.len() - 1) as f64 * f) as usize];
    let xmin = q(&xs, 0.01).min(0.0);
    let xmax = q(&xs, 0.99).max(1.0);
    let mut ys: Vec<f64> = r
        .policies
        .iter()
        .flat_map(|p| pick.iter().map(move |i| usd_f(p.charges[*i] as i128)))
        .filter(|c| *c > 0.0)
        .collect();
    ys.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    let ymax = if ys.is_empty() {
        1.0
    } else {
        q(&ys, 0.99).max(1.0)
    };
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="20" y="24" font-size="15" font-weight="bold">{}: charge vs account PnL (USDC), deficit {} USDC; axes to the 99th percentile, outliers on the edge</text>
"#,
        esc(&r.scenario),
        crate::usd(r.deficit as i128)
    );
    for (k, p) in r.policies.iter().enumerate() {
        let (ox, oy) = (20.0 + (k % cols) as f64 * pw, 40.0 + (k / cols) as f64 * ph);
        let (x0, y0, x1, y1) = (ox + 50.0, oy + 25.0, ox + pw - 15.0, oy + ph - 35.0);
        let sx = |v: f64| x0 + (v.clamp(xmin, xmax) - xmin) / (xmax - xmin) * (x1 - x0);
        let sy = |v: f64| y1 - v.min(ymax) / ymax * (y1 - y0);
        let _ = write!(
            s,
            r##"<g><text x="{}" y="{}" font-weight="bold">{}</text>
<rect x="{x0}" y="{y0}" width="{}" height="{}" fill="none" stroke="#999"/>
<line x1="{zx:.1}" y1="{y0}" x2="{zx:.1}" y2="{y1}" stroke="#ccc"/>
<text x="{x0}" y="{}" text-anchor="middle">{}</text><text x="{x1}" y="{}" text-anchor="middle">{}</text>
<text x="{}" y="{y1}" text-anchor="end">0</text><text x="{}" y="{}" text-anchor="end">{}</text>
<text x="{}" y="{}" text-anchor="middle" fill="#555">PnL</text>
"##,
            ox + 50.0,
            oy + 18.0,
            esc(&p.policy),
            x1 - x0,
            y1 - y0,
            y1 + 14.0,
            axis_label(xmin),
            y1 + 14.0,
            axis_label(xmax),
            x0 - 4.0,
            x0 - 4.0,
            y0 + 8.0,
            axis_label(ymax),
            (x0 + x1) / 2.0,
            y1 + 28.0,
            zx = sx(0.0),
        );
        for i in &pick {
            let c = p.charges[*i];
            if c == 0 {
                continue;
            }
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="1.8" fill="{}" fill-opacity="0.6"/>"#,
                sx(usd_f(r.pnl[*i])),
                sy(usd_f(c as i128)),
                COLORS[k % COLORS.len()]
            );
        }
        s.push_str("</g>\n");
    }
    s.push_str("</svg>\n");
    s
}

/// Per policy, a stacked bar: insurance paid, charged to profit, charged to principal,
/// and the shortfall left unpaid (USDC). A dashed line marks the loss to cover.
pub fn waterfall_chart(r: &Report) -> String {
    let n = r.policies.len() as f64;
    let (w, h) = (140.0 * n + 160.0, 440.0);
    let (x0, y0, y1) = (80.0, 70.0, 350.0);
    let segs = |p: &crate::policy::PolicyReport| {
        let profit = p.collected - p.charged_to_principal;
        [
            p.insurance_paid,
            profit,
            p.charged_to_principal,
            p.shortfall,
        ]
    };
    let top = r
        .policies
        .iter()
        .map(|p| segs(p).iter().sum::<u64>())
        .chain(std::iter::once(r.bankrupt_loss))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let sy = |v: f64| y1 - v / top * (y1 - y0);
    let colors = ["#4575b4", "#91bfdb", "#fc8d59", "#d73027"];
    let names = [
        "insurance",
        "charged to profit",
        "charged to principal",
        "shortfall (unpaid)",
    ];
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="20" y="24" font-size="15" font-weight="bold">{}: who paid for {} USDC of losses beyond capital (USDC)</text>
<line x1="{x0}" y1="{y1}" x2="{}" y2="{y1}" stroke="#333"/>
<text x="{}" y="{y1}" text-anchor="end">0</text><text x="{}" y="{}" text-anchor="end">{}</text>
"##,
        esc(&r.scenario),
        crate::usd(r.bankrupt_loss as i128),
        w - 20.0,
        x0 - 4.0,
        x0 - 4.0,
        y0 + 4.0,
        axis_label(top / 1e6)
    );
    for (k, p) in r.policies.iter().enumerate() {
        let x = x0 + 20.0 + k as f64 * 140.0;
        let mut acc = 0u64;
        for (j, v) in segs(p).iter().enumerate() {
            if *v == 0 {
                continue;
            }
            let (a, b) = (sy(acc as f64), sy((acc + v) as f64));
            let _ = writeln!(
                s,
                r#"<rect x="{x}" y="{b:.1}" width="90" height="{:.1}" fill="{}"><title>{}: {} USDC</title></rect>"#,
                (a - b).max(0.5),
                colors[j],
                names[j],
                crate::usd(*v as i128)
            );
            acc += v;
        }
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end" transform="rotate(-35 {} {})">{}</text>"#,
            x + 80.0,
            y1 + 16.0,
            x + 80.0,
            y1 + 16.0,
            esc(&p.policy)
        );
    }
    let ly = sy(r.bankrupt_loss as f64);
    let _ = writeln!(
        s,
        r##"<line x1="{x0}" y1="{ly:.1}" x2="{}" y2="{ly:.1}" stroke="#000" stroke-dasharray="5,4"/><text x="{}" y="{:.1}" text-anchor="end">loss to cover</text>"##,
        w - 20.0,
        w - 20.0,
        ly - 4.0
    );
    for (j, name) in names.iter().enumerate() {
        let _ = writeln!(
            s,
            r#"<rect x="{}" y="{}" width="12" height="12" fill="{}"/><text x="{}" y="{}">{name}</text>"#,
            x0 + j as f64 * 170.0,
            36.0,
            colors[j],
            x0 + 16.0 + j as f64 * 170.0,
            46.0
        );
    }
    s.push_str("</svg>\n");
    s
}
