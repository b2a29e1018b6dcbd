//! PNG figures for run directories: side-by-side heatmaps (e.g. learned
//! terminating distribution vs target on a 2-D hypergrid) and line charts
//! (e.g. exact L1 vs trajectories, log Z vs step).
//!
//! Drawing uses `plotters`' bitmap backend into an in-memory RGB buffer that is
//! encoded with the `png` crate. Text is rasterised with `ab_glyph` from a font
//! embedded in the binary, so no system font (nor fontconfig) is needed at run
//! time. The font is DejaVu Sans 2.37 (`assets/DejaVuSans.ttf`, copied
//! unmodified from Debian's `fonts-dejavu-core` package), under the Bitstream
//! Vera licence with DejaVu changes in the public domain; the full licence text
//! is in `assets/DejaVuSans.LICENSE`.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, Result, anyhow, ensure};
use plotters::coord::Shift;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

/// DejaVu Sans (Bitstream Vera licence + public domain, see
/// `assets/DejaVuSans.LICENSE`).
static FONT_TTF: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
/// Family name under which the embedded font is registered with plotters.
const FONT: &str = "sans-serif";

/// One heatmap panel: `values[row * width + col]`, `col` along the horizontal
/// axis and `row` along the vertical one, with row 0 at the bottom (Cartesian
/// orientation, so `(col, row)` reads as grid coordinates `(x, y)`).
#[derive(Debug, Clone, PartialEq)]
pub struct Heatmap {
    pub title: String,
    pub width: usize,
    pub height: usize,
    pub values: Vec<f64>,
}

/// One named curve of a line chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// Side length in pixels of the longer side of one heatmap's plotting area.
const HEAT_SIDE: f64 = 300.0;
/// Width of the colour-bar strip at the right of a heatmap figure.
const BAR_WIDTH: u32 = 110;
/// Line-chart size in pixels.
const CURVES_SIZE: (u32, u32) = (960, 600);

/// Colours for curves (matplotlib's "tab10", then darker shades of it, so
/// up to 20 curves stay distinguishable).
const PALETTE: [RGBColor; 20] = [
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
    RGBColor(16, 60, 90),
    RGBColor(150, 70, 0),
    RGBColor(20, 90, 20),
    RGBColor(120, 20, 20),
    RGBColor(80, 50, 110),
    RGBColor(80, 45, 40),
    RGBColor(140, 50, 110),
    RGBColor(50, 50, 50),
    RGBColor(100, 100, 10),
    RGBColor(10, 100, 110),
];

/// Viridis anchors (matplotlib), interpolated linearly.
const VIRIDIS: [(f64, f64, f64); 9] = [
    (68.0, 1.0, 84.0),
    (71.0, 44.0, 122.0),
    (59.0, 81.0, 139.0),
    (44.0, 113.0, 142.0),
    (33.0, 144.0, 141.0),
    (39.0, 173.0, 129.0),
    (92.0, 200.0, 99.0),
    (170.0, 220.0, 50.0),
    (253.0, 231.0, 37.0),
];

/// Colour for cells whose value is not finite.
const NAN_COLOR: RGBColor = RGBColor(200, 200, 200);

/// Viridis colour of `t` in `[0, 1]` (clamped).
fn viridis(t: f64) -> RGBColor {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let pos = t * (VIRIDIS.len() - 1) as f64;
    let i = (pos.floor() as usize).min(VIRIDIS.len() - 2);
    let f = pos - i as f64;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    let mix = |u: f64, v: f64| (u + (v - u) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Registers the embedded font once per process.
fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| plotters::style::register_font(FONT, FontStyle::Normal, FONT_TTF).is_ok());
    ensure!(ok, "embedded font could not be parsed");
    Ok(())
}

/// Turns a plotters error (not always `Send + Sync`) into an anyhow error.
fn plot_err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("plotting failed: {e}")
}

/// Compact number for tick labels and titles: integers below a million in
/// full, moderate values with up to 4 decimals, others in `1.5e-7` form.
fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".to_string()
    } else if !v.is_finite() {
        format!("{v}")
    } else if a < 1e6 && v.fract() == 0.0 {
        format!("{v:.0}")
    } else if (1e-3..1e6).contains(&a) {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        let s = format!("{v:.2e}");
        let (mantissa, exponent) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
        format!("{mantissa}e{exponent}")
    }
}

/// Draws on a white `width` x `height` canvas and writes it to `path` as PNG,
/// creating the parent directory if needed.
fn render_png(
    path: &Path,
    (width, height): (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<()>,
) -> Result<()> {
    ensure_font()?;
    let mut buf = vec![255u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        draw(&root)?;
        root.present().map_err(plot_err)?;
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut encoder = png::Encoder::new(BufWriter::new(file), width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&buf)?;
    writer.finish()?;
    Ok(())
}

/// Draws `panels` on a grid with `cols` columns, all on one colour scale
/// (from `min(0, smallest value)` to the largest value over all panels), with
/// a shared viridis colour bar on the right. Each title gets the panel's own
/// maximum appended. Non-finite cells are grey.
pub fn heatmaps_png(path: &Path, panels: &[Heatmap], cols: usize) -> Result<()> {
    ensure!(!panels.is_empty(), "heatmaps_png: no panels");
    for p in panels {
        ensure!(
            p.width > 0 && p.height > 0 && p.values.len() == p.width * p.height,
            "heatmap '{}': {} values for a {}x{} grid",
            p.title,
            p.values.len(),
            p.width,
            p.height
        );
    }
    let cols = cols.clamp(1, panels.len());
    let rows = panels.len().div_ceil(cols);

    let finite = panels
        .iter()
        .flat_map(|p| p.values.iter().copied())
        .filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((0.0f64, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let hi = if hi.is_finite() && hi > lo {
        hi
    } else {
        lo + 1.0
    };

    // Panel geometry: square cells, longer grid side HEAT_SIDE pixels.
    let max_w = panels.iter().map(|p| p.width).max().unwrap_or(1);
    let max_h = panels.iter().map(|p| p.height).max().unwrap_or(1);
    let cell = HEAT_SIDE / max_w.max(max_h) as f64;
    let (plot_w, plot_h) = (
        (cell * max_w as f64).round().max(40.0) as u32,
        (cell * max_h as f64).round().max(40.0) as u32,
    );
    let (left, bottom, top, margin) = (50u32, 40u32, 40u32, 12u32);
    let panel_w = plot_w + left + 2 * margin;
    let panel_h = plot_h + bottom + top + 2 * margin;
    let size = (panel_w * cols as u32 + BAR_WIDTH, panel_h * rows as u32);

    render_png(path, size, |root| {
        let (grid, bar) = root.split_horizontally(size.0 - BAR_WIDTH);
        let areas = grid.split_evenly((rows, cols));
        let mut first_plot_ys = None;
        for (panel, area) in panels.iter().zip(areas.iter()) {
            let ys = draw_heatmap(area, panel, (lo, hi), (left, bottom, margin))?;
            first_plot_ys.get_or_insert(ys);
        }
        // The bar spans the first row's plotting areas.
        let ys = first_plot_ys.unwrap_or(top as i32..size.1 as i32);
        let bar_margins = (
            ys.start.max(0) as u32,
            (size.1 as i32 - ys.end).max(0) as u32,
        );
        draw_colour_bar(&bar, (lo, hi), bar_margins)
    })
}

fn draw_heatmap(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    panel: &Heatmap,
    (lo, hi): (f64, f64),
    (left, bottom, margin): (u32, u32, u32),
) -> Result<std::ops::Range<i32>> {
    let (w, h) = (panel.width, panel.height);
    let pmax = panel
        .values
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(f64::NEG_INFINITY, f64::max);
    let caption = format!("{} (max {})", panel.title, fmt_num(pmax));
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 20))
        .margin(margin)
        .x_label_area_size(bottom)
        .y_label_area_size(left)
        .build_cartesian_2d(-0.5..w as f64 - 0.5, -0.5..h as f64 - 0.5)
        .map_err(plot_err)?;
    let int_label = |v: &f64| {
        if (v - v.round()).abs() < 1e-9 {
            format!("{}", v.round() as i64)
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(w.clamp(2, 10))
        .y_labels(h.clamp(2, 10))
        .x_label_formatter(&int_label)
        .y_label_formatter(&int_label)
        .label_style((FONT, 14))
        .draw()
        .map_err(plot_err)?;
    let cells = (0..h).flat_map(|r| (0..w).map(move |c| (r, c)));
    chart
        .draw_series(cells.map(|(r, c)| {
            let v = panel.values[r * w + c];
            let colour = if v.is_finite() {
                viridis((v - lo) / (hi - lo))
            } else {
                NAN_COLOR
            };
            let (x, y) = (c as f64, r as f64);
            Rectangle::new([(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)], colour.filled())
        }))
        .map_err(plot_err)?;
    Ok(chart.plotting_area().get_pixel_range().1)
}

fn draw_colour_bar(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    (lo, hi): (f64, f64),
    (top, bottom): (u32, u32),
) -> Result<()> {
    let area = area.margin(top, bottom, 12, 0);
    let mut chart = ChartBuilder::on(&area)
        .set_label_area_size(LabelAreaPosition::Right, 64)
        .build_cartesian_2d(0.0..1.0, lo..hi)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(6)
        .y_label_formatter(&|v| fmt_num(*v))
        .label_style((FONT, 14))
        .draw()
        .map_err(plot_err)?;
    let steps = 256;
    let dy = (hi - lo) / steps as f64;
    chart
        .draw_series((0..steps).map(|i| {
            let y = lo + i as f64 * dy;
            Rectangle::new(
                [(0.0, y), (1.0, y + dy)],
                viridis((i as f64 + 0.5) / steps as f64).filled(),
            )
        }))
        .map_err(plot_err)?;
    Ok(())
}

/// Line chart of `series` with a legend and axis labels. With `log_y`, the y
/// axis is logarithmic and points with `y <= 0` are skipped; non-finite points
/// are always skipped. A series with two points at the same y (e.g. a true
/// value) draws as a horizontal reference line.
pub fn curves_png(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_y: bool,
) -> Result<()> {
    let kept: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|s| {
            s.points
                .iter()
                .copied()
                .filter(|&(x, y)| x.is_finite() && y.is_finite() && (!log_y || y > 0.0))
                .collect()
        })
        .collect();
    let all = || kept.iter().flatten().copied();
    let bounds = |f: fn((f64, f64)) -> f64| {
        all()
            .map(f)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            })
    };
    let (x0, x1) = pad_linear(bounds(|p| p.0));
    let (y0, y1) = if log_y {
        pad_log(bounds(|p| p.1))
    } else {
        pad_linear(bounds(|p| p.1))
    };
    let legend_pos = legend_corner(&kept, (x0, x1), (y0, y1), log_y);

    render_png(path, CURVES_SIZE, |root| {
        let mut builder = ChartBuilder::on(root);
        builder
            .caption(title, (FONT, 26))
            .margin(16)
            .x_label_area_size(56)
            .y_label_area_size(96);
        if log_y {
            // plotters' own log ticks are powers of ten only (none at all
            // within one decade), so pick them here.
            let (bold, light) = log_ticks(y0, y1);
            let y_coord = (y0..y1)
                .log_scale()
                .with_key_points(bold)
                .with_light_points(light);
            let mut chart = builder
                .build_cartesian_2d(x0..x1, y_coord)
                .map_err(plot_err)?;
            draw_curves(&mut chart, (x_label, y_label), series, &kept, legend_pos)
        } else {
            let mut chart = builder
                .build_cartesian_2d(x0..x1, y0..y1)
                .map_err(plot_err)?;
            draw_curves(&mut chart, (x_label, y_label), series, &kept, legend_pos)
        }
    })
}

/// Mesh, axis labels, lines and legend of [`curves_png`] on a built chart
/// whose y coordinate is linear or logarithmic.
fn draw_curves<'a, Y>(
    chart: &mut ChartContext<'a, BitMapBackend<'a>, Cartesian2d<RangedCoordf64, Y>>,
    (x_label, y_label): (&str, &str),
    series: &[Series],
    kept: &[Vec<(f64, f64)>],
    legend_pos: SeriesLabelPosition,
) -> Result<()>
where
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .x_label_formatter(&|v| fmt_num(*v))
        .y_label_formatter(&|v| fmt_num(*v))
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 18))
        .draw()
        .map_err(plot_err)?;
    for (i, (s, pts)) in series.iter().zip(kept).enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), colour.stroke_width(2)))
            .map_err(plot_err)?
            .label(s.name.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], colour.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .position(legend_pos)
        .margin(12)
        .label_font((FONT, 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)?;
    Ok(())
}

/// Data range padded by 5% on each side; a default when empty or degenerate.
fn pad_linear((lo, hi): (f64, f64)) -> (f64, f64) {
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 1.0);
    }
    if hi - lo <= f64::EPSILON * lo.abs().max(hi.abs()).max(1e-300) {
        let d = if lo == 0.0 { 1.0 } else { 0.1 * lo.abs() };
        return (lo - d, hi + d);
    }
    let d = 0.05 * (hi - lo);
    (lo - d, hi + d)
}

/// Labelled and light tick values for a log axis on `[lo, hi]`, `0 < lo < hi`:
/// the densest of `{1..9}`, `{1, 2, 5}`, `{1, 3}`, `{1}` times powers of ten
/// with at most 10 labels (every few decades when even that is too many), or
/// evenly spaced ticks when the range is too narrow for 3 such labels.
fn log_ticks(lo: f64, hi: f64) -> (Vec<f64>, Vec<f64>) {
    let (k0, k1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let in_range = |v: &f64| *v >= lo * (1.0 - 1e-9) && *v <= hi * (1.0 + 1e-9);
    let ticks = |mantissas: &[f64], every: i32| -> Vec<f64> {
        (k0..=k1)
            .filter(|k| k.rem_euclid(every) == 0)
            .flat_map(|k| {
                // Divide for negative powers: 6 / 10 is exactly 0.6's double.
                let scale = move |m: &f64| {
                    if k < 0 {
                        m / 10f64.powi(-k)
                    } else {
                        m * 10f64.powi(k)
                    }
                };
                mantissas.iter().map(scale)
            })
            .filter(in_range)
            .collect()
    };
    let all: Vec<f64> = (1..10).map(f64::from).collect();
    let light = if k1 - k0 <= 8 {
        ticks(&all, 1)
    } else {
        ticks(&[1.0], 1)
    };
    let sets: [&[f64]; 4] = [&all, &[1.0, 2.0, 5.0], &[1.0, 3.0], &[1.0]];
    for set in sets {
        let bold = ticks(set, 1);
        if bold.len() <= 10 {
            if bold.len() >= 3 {
                return (bold, light);
            }
            let bold = linear_ticks(lo, hi, 6);
            let light = linear_ticks(lo, hi, 30);
            return (bold, light);
        }
    }
    let every = (k1 - k0).div_euclid(8).max(1) + 1;
    (ticks(&[1.0], every), light)
}

/// About `target` evenly spaced round values (steps 1, 2 or 5 times a power
/// of ten) within `[lo, hi]`.
fn linear_ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    let raw = (hi - lo) / target.max(1) as f64;
    if !(raw.is_finite() && raw > 0.0) {
        return vec![lo];
    }
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let (first, last) = ((lo / step).ceil() as i64, (hi / step).floor() as i64);
    (first..=last).map(|i| i as f64 * step).collect()
}

/// Positive data range padded by 5% of its decades on each side.
fn pad_log((lo, hi): (f64, f64)) -> (f64, f64) {
    if !(lo.is_finite() && hi.is_finite() && lo > 0.0) {
        return (0.1, 1.0);
    }
    let (a, b) = (lo.log10(), hi.log10());
    let d = if b - a < 1e-9 { 0.5 } else { 0.05 * (b - a) };
    (10f64.powf(a - d), 10f64.powf(b + d))
}

/// The corner of the plotting area with the fewest data points (and segment
/// midpoints) near it, so the legend hides as little of the curves as possible.
fn legend_corner(
    kept: &[Vec<(f64, f64)>],
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
    log_y: bool,
) -> SeriesLabelPosition {
    let ny = |y: f64| {
        if log_y {
            (y.log10() - y0.log10()) / (y1.log10() - y0.log10())
        } else {
            (y - y0) / (y1 - y0)
        }
    };
    // Normalised points, including segment midpoints so that sparse lines
    // (e.g. a two-point reference line) still count.
    let mut pts = Vec::new();
    for s in kept {
        for (i, &(x, y)) in s.iter().enumerate() {
            let p = ((x - x0) / (x1 - x0), ny(y));
            pts.push(p);
            if i > 0 {
                let q = pts[pts.len() - 2];
                for k in 1..8 {
                    let t = k as f64 / 8.0;
                    pts.push((q.0 + (p.0 - q.0) * t, q.1 + (p.1 - q.1) * t));
                }
            }
        }
    }
    let corners = [
        (SeriesLabelPosition::UpperRight, 1.0, 1.0),
        (SeriesLabelPosition::UpperLeft, 0.0, 1.0),
        (SeriesLabelPosition::LowerRight, 1.0, 0.0),
        (SeriesLabelPosition::LowerLeft, 0.0, 0.0),
    ];
    let (w, h) = (0.4, 0.35);
    let mut best = (usize::MAX, SeriesLabelPosition::UpperRight);
    for (pos, cx, cy) in corners {
        let n = pts
            .iter()
            .filter(|&&(x, y)| (x - cx).abs() < w && (y - cy).abs() < h)
            .count();
        if n < best.0 {
            best = (n, pos);
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A fresh directory under the system temp dir.
    fn temp_dir(tag: &str) -> PathBuf {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("ftb-plot-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Checks the PNG signature and returns (width, height) from IHDR.
    fn png_size(path: &Path) -> (u32, u32) {
        let bytes = std::fs::read(path).unwrap();
        assert!(bytes.len() > 24, "{} too short", path.display());
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&bytes[12..16], b"IHDR");
        let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
        let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
        (w, h)
    }

    /// A 2-D hypergrid-like target (reward high near the corners) and a
    /// blurred "learned" version of it.
    fn example_heatmaps(n: usize) -> Vec<Heatmap> {
        let reward = |x: usize, y: usize| {
            let f = |c: usize| ((c as f64 + 0.5) / n as f64 - 0.5).abs();
            let (ax, ay) = (f(x), f(y));
            0.01 + 0.5 * ((0.25 < ax) && (0.25 < ay)) as u8 as f64
                + 2.0 * ((0.3 < ax && ax < 0.4) && (0.3 < ay && ay < 0.4)) as u8 as f64
        };
        let mut target: Vec<f64> = (0..n * n).map(|i| reward(i % n, i / n)).collect();
        let z: f64 = target.iter().sum();
        target.iter_mut().for_each(|v| *v /= z);
        let learned: Vec<f64> = target
            .iter()
            .enumerate()
            .map(|(i, v)| v * (1.0 + 0.3 * ((i as f64) * 0.7).sin()))
            .collect();
        vec![
            Heatmap {
                title: "learned P_T".into(),
                width: n,
                height: n,
                values: learned,
            },
            Heatmap {
                title: "target".into(),
                width: n,
                height: n,
                values: target,
            },
        ]
    }

    fn example_l1_series() -> Vec<Series> {
        (0..3)
            .map(|k| Series {
                name: format!("run {k} (alpha = {})", 0.5 * k as f64),
                points: (1..=50)
                    .map(|i| {
                        let t = i as f64 * 2000.0;
                        (t, 1.5 * (-(t / (20000.0 * (k + 1) as f64))).exp() + 0.01)
                    })
                    .collect(),
            })
            .collect()
    }

    fn example_log_z_series() -> Vec<Series> {
        let true_log_z = 3.2;
        vec![
            Series {
                name: "log Z (learned)".into(),
                points: (0..200)
                    .map(|i| (i as f64, true_log_z * (1.0 - (-(i as f64) / 40.0).exp())))
                    .collect(),
            },
            Series {
                name: "true log Z".into(),
                points: vec![(0.0, true_log_z), (199.0, true_log_z)],
            },
        ]
    }

    #[test]
    fn heatmap_png_has_expected_size() {
        let dir = temp_dir("heat");
        let path = dir.join("heat.png");
        heatmaps_png(&path, &example_heatmaps(8), 2).unwrap();
        // cell = 300 / 8 = 37.5 px: plot 300x300, panel 374x404, two columns
        // plus the colour bar.
        assert_eq!(png_size(&path), (2 * 374 + BAR_WIDTH, 404));
        // A non-square grid, three panels in two columns, nested new dir.
        let panels: Vec<Heatmap> = (0..3)
            .map(|k| Heatmap {
                title: format!("p{k}"),
                width: 6,
                height: 3,
                values: (0..18).map(|i| (i * (k + 1)) as f64).collect(),
            })
            .collect();
        let path = dir.join("sub").join("wide.png");
        heatmaps_png(&path, &panels, 2).unwrap();
        assert_eq!(png_size(&path), (2 * 374 + BAR_WIDTH, 2 * (150 + 104)));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn heatmap_rejects_bad_input() {
        let path = std::env::temp_dir().join("ftb-plot-never-written.png");
        assert!(heatmaps_png(&path, &[], 1).is_err());
        let bad = Heatmap {
            title: "bad".into(),
            width: 3,
            height: 3,
            values: vec![0.0; 8],
        };
        assert!(heatmaps_png(&path, &[bad], 1).is_err());
    }

    #[test]
    fn curves_png_has_expected_size() {
        let dir = temp_dir("curves");
        let path = dir.join("l1.png");
        curves_png(
            &path,
            "exact L1",
            "trajectories",
            "L1",
            &example_l1_series(),
            true,
        )
        .unwrap();
        assert_eq!(png_size(&path), CURVES_SIZE);
        let path = dir.join("logz.png");
        curves_png(
            &path,
            "log Z",
            "step",
            "log Z",
            &example_log_z_series(),
            false,
        )
        .unwrap();
        assert_eq!(png_size(&path), CURVES_SIZE);
        // Degenerate inputs still produce a figure: no series, all points
        // non-positive in log mode, a single point, NaNs.
        let odd = [
            Series {
                name: "negative".into(),
                points: vec![(0.0, -1.0), (1.0, 0.0)],
            },
            Series {
                name: "single".into(),
                points: vec![(2.0, f64::NAN), (3.0, 5.0)],
            },
        ];
        for (i, (s, log)) in [(&odd[..], true), (&odd[..], false), (&[][..], true)]
            .into_iter()
            .enumerate()
        {
            let path = dir.join(format!("odd{i}.png"));
            curves_png(&path, "odd", "x", "y", s, log).unwrap();
            assert_eq!(png_size(&path), CURVES_SIZE);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn number_format() {
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_num(20000.0), "20000");
        assert_eq!(fmt_num(-3.0), "-3");
        assert_eq!(fmt_num(0.0698), "0.0698");
        assert_eq!(fmt_num(2.5), "2.5");
        assert_eq!(fmt_num(1.25e-5), "1.25e-5");
        assert_eq!(fmt_num(3e7), "3e7");
        assert_eq!(fmt_num(f64::NAN), "NaN");
    }

    #[test]
    fn log_ticks_are_round_and_in_range() {
        let close = |a: &[f64], b: &[f64]| {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|(x, y)| (x - y).abs() < 1e-12 * y.abs())
        };
        // Two decades: 1, 2, 5 times powers of ten.
        let (bold, light) = log_ticks(0.015, 1.7);
        assert!(close(&bold, &[0.02, 0.05, 0.1, 0.2, 0.5, 1.0]), "{bold:?}");
        assert!(light.len() > bold.len());
        // Within one decade: all mantissas.
        let (bold, _) = log_ticks(0.25, 0.95);
        assert!(
            close(&bold, &[0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]),
            "{bold:?}"
        );
        // Too narrow for that: evenly spaced round values.
        let (bold, _) = log_ticks(0.49, 0.81);
        assert_eq!(bold, [0.5, 0.6, 0.7, 0.8]);
        let (bold, _) = log_ticks(0.505, 0.71);
        assert!(close(&bold, &[0.55, 0.6, 0.65, 0.7]), "{bold:?}");
        // Many decades: at most 10 labels, all powers of ten.
        let (bold, _) = log_ticks(1e-30, 1.0);
        assert!((3..=10).contains(&bold.len()), "{bold:?}");
        assert!(
            bold.iter()
                .all(|v| (v.log10() - v.log10().round()).abs() < 1e-9)
        );
    }

    #[test]
    fn viridis_endpoints() {
        assert_eq!(viridis(0.0), RGBColor(68, 1, 84));
        assert_eq!(viridis(1.0), RGBColor(253, 231, 37));
        assert_eq!(viridis(f64::NAN), viridis(0.0));
        assert_eq!(viridis(2.0), viridis(1.0));
    }

    /// Writes the examples to /tmp/plot_examples for a visual check:
    /// `cargo test --release --lib plot -- --ignored`.
    #[test]
    #[ignore]
    fn write_examples() {
        let dir = Path::new("/tmp/plot_examples");
        heatmaps_png(&dir.join("heatmaps.png"), &example_heatmaps(16), 2).unwrap();
        curves_png(
            &dir.join("l1.png"),
            "exact L1 vs trajectories",
            "trajectories sampled",
            "L1 to target",
            &example_l1_series(),
            true,
        )
        .unwrap();
        let panels: Vec<Heatmap> = (0..3)
            .map(|k| Heatmap {
                title: format!("panel {k}"),
                width: 12,
                height: 5,
                values: (0..60)
                    .map(|i| {
                        if i == 7 {
                            f64::NAN
                        } else {
                            (i * (k + 1)) as f64
                        }
                    })
                    .collect(),
            })
            .collect();
        heatmaps_png(&dir.join("wide.png"), &panels, 2).unwrap();
        let narrow = vec![Series {
            name: "narrow".into(),
            points: (0..30).map(|i| (i as f64, 0.5 + 0.01 * i as f64)).collect(),
        }];
        curves_png(
            &dir.join("narrow_log.png"),
            "narrow",
            "x",
            "y",
            &narrow,
            true,
        )
        .unwrap();
        curves_png(
            &dir.join("logz.png"),
            "log Z during training",
            "step",
            "log Z",
            &example_log_z_series(),
            false,
        )
        .unwrap();
    }
}
