//! PNG plots of the results (plotters, bitmap backend). Text needs a TTF
//! font: DejaVu Sans from Debian's `fonts-dejavu-core`, installed when
//! missing.

use std::path::Path;

use anyhow::Context;
use plotters::{
    coord::{Shift, types::RangedCoordf64},
    prelude::*,
};

use crate::{procs::ensure_installed, report::Results};

const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
const COLORS: [RGBColor; 14] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(0, 0, 128),
    RGBColor(128, 128, 0),
    RGBColor(0, 128, 128),
    RGBColor(0, 0, 0),
];

fn register_font() -> anyhow::Result<()> {
    if !Path::new(FONT).is_file() {
        ensure_installed("fc-list", "fonts-dejavu-core")?;
    }
    let bytes: &'static [u8] = Box::leak(std::fs::read(FONT).with_context(|| format!("reading {FONT}"))?.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).map_err(|_| anyhow::anyhow!("{FONT} is not a font"))?;
    Ok(())
}

/// Writes every plot the results allow into `dir`; returns the file names.
pub(crate) fn all(results: &Results, dir: &Path) -> anyhow::Result<Vec<String>> {
    register_font()?;
    let mut written = Vec::new();
    let mut bar_plot = |workload: &str,
                        variant: Option<&str>,
                        file: &str,
                        title: &str,
                        axis: &str,
                        value: &dyn Fn(&crate::report::Record) -> Option<f64>| {
        let items: Vec<(String, f64)> = results
            .of(workload)
            .filter(|r| variant.is_none_or(|v| r.variant == v))
            .filter_map(|r| value(r).map(|v| (r.contender.clone(), v)))
            .collect();
        if items.is_empty() {
            return Ok::<_, anyhow::Error>(());
        }
        bars(&dir.join(file), title, axis, &items)?;
        written.push(file.to_owned());
        Ok(())
    };
    bar_plot(
        "hit",
        Some("1 KiB"),
        "hit.png",
        "All hits on one key, 1 KiB body",
        "requests/s",
        &|r| r.rps,
    )?;
    bar_plot(
        "hit",
        Some("1 KiB"),
        "hit-p99.png",
        "All hits on one key, 1 KiB body: p99 latency",
        "p99 (ms)",
        &|r| r.p99_us.map(|v| v / 1e3),
    )?;
    bar_plot(
        "zipf",
        None,
        "zipf.png",
        "Zipf mix over 100,000 keys, 1 KiB bodies",
        "requests/s",
        &|r| r.rps,
    )?;
    bar_plot(
        "redis",
        None,
        "redis.png",
        "Hit p50 at one connection against a raw Redis GET",
        "p50 (µs)",
        &|r| r.p50_us,
    )?;
    bar_plot(
        "stampede",
        None,
        "stampede.png",
        "1,000 concurrent requests on a cold key",
        "origin calls (most over the rounds)",
        &|r| r.origin_calls.map(|c| c as f64),
    )?;
    if results.of("sizes").next().is_some() {
        sizes(results, &dir.join("sizes.png"))?;
        written.push("sizes.png".to_owned());
    }
    if results.of("growth").next().is_some() {
        growth(results, &dir.join("growth.png"))?;
        written.push("growth.png".to_owned());
    }
    Ok(written)
}

fn bars(path: &Path, title: &str, axis: &str, items: &[(String, f64)]) -> anyhow::Result<()> {
    let height = 120 + 34 * items.len() as u32;
    let root = BitMapBackend::new(path, (1000, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let max = items.iter().map(|(_, v)| *v).fold(0.0, f64::max).max(1.0) * 1.15;
    let n = items.len();
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(210)
        .build_cartesian_2d(0.0..max, 0.0..n as f64)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_label_formatter(&|v: &f64| format_value(*v))
        .x_desc(axis)
        .label_style(("sans-serif", 15))
        .draw()?;
    for (i, (name, value)) in items.iter().enumerate() {
        let y = (n - 1 - i) as f64;
        let color = COLORS[i % COLORS.len()];
        chart.draw_series(std::iter::once(Rectangle::new(
            [(0.0, y + 0.15), (*value, y + 0.85)],
            color.filled(),
        )))?;
        chart.draw_series(std::iter::once(Text::new(
            format_value(*value),
            (*value + max * 0.01, y + 0.62),
            ("sans-serif", 14).into_font(),
        )))?;
        label_left(&chart, &root, name, y + 0.5)?;
    }
    root.present()?;
    Ok(())
}

/// A contender's name left of its bar.
fn label_left(
    chart: &ChartContext<'_, BitMapBackend<'_>, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    root: &DrawingArea<BitMapBackend<'_>, Shift>,
    name: &str,
    y: f64,
) -> anyhow::Result<()> {
    let (_, py) = chart.backend_coord(&(0.0, y));
    let style = TextStyle::from(("sans-serif", 16).into_font()).pos(plotters::style::text_anchor::Pos::new(
        plotters::style::text_anchor::HPos::Right,
        plotters::style::text_anchor::VPos::Center,
    ));
    root.draw(&Text::new(name.to_owned(), (215, py), style))?;
    Ok(())
}

fn format_value(value: f64) -> String {
    if value >= 1000.0 {
        format!("{:.0}", value)
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.3}")
    }
}

fn sizes(results: &Results, path: &Path) -> anyhow::Result<()> {
    let variants = ["10 B", "1 KiB", "64 KiB", "256 KiB"];
    let mut contenders: Vec<String> = Vec::new();
    for r in results.of("sizes") {
        if !contenders.contains(&r.contender) {
            contenders.push(r.contender.clone());
        }
    }
    let max = results.of("sizes").filter_map(|r| r.rps).fold(0.0, f64::max).max(1.0) * 1.1;
    let root = BitMapBackend::new(path, (1000, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Hits on one key by body size", ("sans-serif", 24))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.2..3.2, 0.0..max)?;
    chart
        .configure_mesh()
        .x_labels(4)
        .x_label_formatter(&|x: &f64| variants.get(x.round() as usize).copied().unwrap_or("").to_owned())
        .x_desc("body size")
        .y_desc("requests/s")
        .y_label_formatter(&|v: &f64| format!("{v:.0}"))
        .label_style(("sans-serif", 15))
        .draw()?;
    for (i, contender) in contenders.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let points: Vec<(f64, f64)> = variants
            .iter()
            .enumerate()
            .filter_map(|(x, v)| {
                results
                    .of("sizes")
                    .find(|r| r.variant == *v && &r.contender == contender)
                    .and_then(|r| r.rps)
                    .map(|rps| (x as f64, rps))
            })
            .collect();
        line(&mut chart, points, color, contender.clone())?;
    }
    finish_lines(&mut chart, &root)
}

fn growth(results: &Results, path: &Path) -> anyhow::Result<()> {
    let records: Vec<_> = results.of("growth").collect();
    let mut variants: Vec<String> = Vec::new();
    for r in &records {
        if !variants.contains(&r.variant) {
            variants.push(r.variant.clone());
        }
    }
    let max = records.iter().filter_map(|r| r.p99_us).fold(0.0, f64::max).max(0.1) * 1.1;
    let root = BitMapBackend::new(path, (1000, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let last = variants.len().max(1) as f64 - 1.0;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "In-process hit latency (Cache::begin, moka) by entries held",
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.2..last + 0.2, 0.0..max)?;
    chart
        .configure_mesh()
        .x_labels(variants.len())
        .x_label_formatter(&|x: &f64| variants.get(x.round() as usize).cloned().unwrap_or_default())
        .y_desc("latency (µs)")
        .label_style(("sans-serif", 15))
        .draw()?;
    let series = [("hot key", "p50"), ("hot key", "p99"), ("random key", "p50"), ("random key", "p99")];
    for (i, (what, quantile)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let points: Vec<(f64, f64)> = variants
            .iter()
            .enumerate()
            .filter_map(|(x, v)| {
                let r = records.iter().find(|r| &r.variant == v && r.contender == *what)?;
                let value = if *quantile == "p50" { r.p50_us } else { r.p99_us }?;
                Some((x as f64, value))
            })
            .collect();
        line(&mut chart, points, color, format!("{what} {quantile}"))?;
    }
    finish_lines(&mut chart, &root)
}

type LineChart<'a, 'b> = ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// One labelled line with its points marked.
fn line(chart: &mut LineChart<'_, '_>, points: Vec<(f64, f64)>, color: RGBColor, label: String) -> anyhow::Result<()> {
    chart
        .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
    Ok(())
}

/// The legend of a line chart, and the file written.
fn finish_lines<'a, 'b: 'a>(chart: &mut LineChart<'a, 'b>, root: &DrawingArea<BitMapBackend<'b>, Shift>) -> anyhow::Result<()> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()?;
    root.present()?;
    Ok(())
}
