//! The PNG charts of the lab: panels of lines (throughput and latency over time, chaos heights
//! per node) and of bars (the latency histogram), drawn with `plotters` into an RGB buffer and
//! encoded with `png`. Text is set in DejaVu Sans, embedded in the binary
//! (`assets/DejaVuSans.ttf`, its licence beside it), so that no system font is needed.
//!
//! Every axis runs from zero, to a round number at or above the largest value (a histogram's x
//! axis to where its last bar ends), and each panel has its title and legend in a row of its
//! own above the plot, where no line can hide them.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, Result, anyhow};
use plotters::backend::RGBPixel;
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// DejaVu Sans (Bitstream Vera licence; DejaVu's changes are in the public domain).
const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
/// The family every text style names; plotters' own defaults (tick labels) name it too.
const FAMILY: &str = "sans-serif";

/// Category colours (matplotlib's), one per series or node.
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];
pub(crate) const BLUE: RGBColor = PALETTE[0];
pub(crate) const ORANGE: RGBColor = PALETTE[1];
pub(crate) const GREEN: RGBColor = PALETTE[2];
pub(crate) const RED: RGBColor = PALETTE[3];
const GRID: RGBColor = RGBColor(225, 225, 225);

/// The colour of series or node `index`, repeating after eight.
pub(crate) fn color(index: usize) -> RGBColor {
    PALETTE.get(index % PALETTE.len()).copied().unwrap_or(BLACK)
}

/// A named series of points.
pub(crate) struct Series<'a> {
    pub(crate) name: &'a str,
    pub(crate) color: RGBColor,
    pub(crate) points: Vec<(f64, f64)>,
}

/// A picture being drawn, RGB, row by row.
pub(crate) struct Canvas {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
}

/// A panel's place on the canvas.
#[derive(Clone, Copy)]
pub(crate) struct Area {
    pub(crate) x: u32,
    pub(crate) y: u32,
    pub(crate) width: u32,
    pub(crate) height: u32,
}

/// The row above a panel's plot that holds its title and legend.
const HEADING: u32 = 36;
const TITLE_SIZE: u32 = 20;
const LABEL_SIZE: u32 = 14;
const DESCRIPTION_SIZE: u32 = 15;

/// A panel of the canvas, in pixels from its top left corner.
type Panel<'a> = DrawingArea<BitMapBackend<'a, RGBPixel>, Shift>;

impl Canvas {
    /// A white canvas.
    pub(crate) fn new(width: u32, height: u32) -> Canvas {
        let bytes = usize::try_from(u64::from(width) * u64::from(height) * 3).unwrap_or(0);
        Canvas {
            width,
            height,
            pixels: vec![255; bytes],
        }
    }

    /// The colour at `(x, y)`, if inside.
    #[cfg(test)]
    pub(crate) fn get(&self, x: u32, y: u32) -> Option<RGBColor> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let at = (y as usize * self.width as usize + x as usize) * 3;
        match self.pixels.get(at..at + 3)? {
            [r, g, b] => Some(RGBColor(*r, *g, *b)),
            _ => None,
        }
    }

    /// Draws on the part of the canvas that `area` names.
    fn panel(&mut self, area: Area, draw: impl FnOnce(&Panel<'_>) -> Result<()>) -> Result<()> {
        register_font()?;
        let backend = BitMapBackend::<RGBPixel>::with_buffer_and_format(&mut self.pixels, (self.width, self.height))
            .map_err(|error| anyhow!("a {}×{} canvas: {error}", self.width, self.height))?;
        let panel = backend
            .into_drawing_area()
            .shrink((area.x, area.y), (area.width, area.height));
        draw(&panel)?;
        panel.present().context("drawing a chart panel")?;
        Ok(())
    }

    /// A panel of lines: axes from zero to the largest value, a title and a legend.
    pub(crate) fn lines(&mut self, area: Area, title: &str, x_label: &str, series: &[Series<'_>]) -> Result<()> {
        let points = series.iter().flat_map(|s| s.points.iter());
        let (x_max, y_max) = points.fold((0.0_f64, 0.0_f64), |(x, y), p| (x.max(p.0), y.max(p.1)));
        self.panel(area, |panel| {
            let legend: Vec<(&str, RGBColor)> = series.iter().map(|s| (s.name, s.color)).collect();
            heading(panel, title, &legend)?;
            let chart = axes(panel, x_label, nice_ceiling(x_max), nice_ceiling(y_max))?;
            // Each line is two pixels wide, drawn as three one-pixel lines a pixel apart:
            // plotters draws a wider line as a filled polygon, which takes many times longer
            // and leaves holes where the path crosses itself (overlapping fault spans).
            let plot = chart.plotting_area();
            let (left, top) = plot.get_base_pixel();
            let pixels = plot.strip_coord_spec();
            for s in series {
                let path: Vec<(i32, i32)> = s
                    .points
                    .iter()
                    .map(|point| {
                        let (x, y) = plot.map_coordinate(point);
                        (x - left, y - top)
                    })
                    .collect();
                for (dx, dy) in [(0, 0), (1, 0), (0, 1)] {
                    let shifted: Vec<(i32, i32)> = path.iter().map(|&(x, y)| (x + dx, y + dy)).collect();
                    pixels.draw(&PathElement::new(shifted, s.color))?;
                }
            }
            Ok(())
        })
    }

    /// A panel of bars over `[0, upper)`, one per count.
    pub(crate) fn bars(
        &mut self,
        area: Area,
        title: &str,
        x_label: &str,
        counts: &[u64],
        upper: f64,
        color: RGBColor,
    ) -> Result<()> {
        let y_max = counts.iter().copied().max().unwrap_or(0) as f64;
        let width = upper / counts.len().max(1) as f64;
        self.panel(area, |panel| {
            heading(panel, title, &[])?;
            // The bars fill the width: the x axis ends where the last one does.
            let x_end = if upper.is_finite() && upper > 0.0 { upper } else { 1.0 };
            let mut chart = axes(panel, x_label, x_end, nice_ceiling(y_max))?;
            chart.draw_series(counts.iter().enumerate().map(|(i, count)| {
                let left = i as f64 * width;
                let mut bar = Rectangle::new([(left, *count as f64), (left + width, 0.0)], color.filled());
                // A pixel of white between neighbours.
                bar.set_margin(0, 0, 0, 1);
                bar
            }))?;
            Ok(())
        })
    }

    /// Writes the canvas to `path` as a PNG file.
    pub(crate) fn save(&self, path: &Path) -> Result<()> {
        let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), self.width, self.height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder
            .write_header()
            .with_context(|| format!("writing {}", path.display()))?;
        writer
            .write_image_data(&self.pixels)
            .with_context(|| format!("writing {}", path.display()))?;
        writer.finish().with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }
}

/// Makes the embedded font the one plotters draws its `sans-serif` text in (once).
fn register_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let registered =
        *REGISTERED.get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if registered {
        Ok(())
    } else {
        Err(anyhow!(
            "the embedded assets/DejaVuSans.ttf is not a font plotters can read"
        ))
    }
}

/// Writes `title` at the left of the panel's top row and the legend (a swatch and a name per
/// series) at its right.
fn heading(panel: &Panel<'_>, title: &str, legend: &[(&str, RGBColor)]) -> Result<()> {
    let black = |size: u32| (FAMILY, size).into_font().color(&BLACK);
    panel.draw_text(title, &black(TITLE_SIZE), (10, 8))?;
    // Each name is centred on its swatch's middle row.
    let label = black(LABEL_SIZE).pos(Pos::new(HPos::Left, VPos::Center));
    let middle = 19;
    let mut right = i32::try_from(panel.dim_in_pixel().0).unwrap_or(i32::MAX) - 20;
    for (name, color) in legend.iter().rev() {
        let (text_width, _) = panel.estimate_text_size(name, &label)?;
        let left = right - i32::try_from(text_width).unwrap_or(0) - 20;
        panel.draw(&Rectangle::new(
            [(left, middle - 7), (left + 14, middle + 7)],
            color.filled(),
        ))?;
        panel.draw_text(name, &label, (left + 20, middle))?;
        right = left - 16;
    }
    Ok(())
}

/// The chart below a panel's heading: axes from zero to `x_end` and `y_end`, grid lines at
/// the ticks, tick labels, and `x_label` under the x axis.
fn axes<'a, 'b>(
    panel: &'a Panel<'b>,
    x_label: &str,
    x_end: f64,
    y_end: f64,
) -> Result<ChartContext<'a, BitMapBackend<'b, RGBPixel>, Cartesian2d<RangedCoordf64, RangedCoordf64>>> {
    let mut chart = ChartBuilder::on(panel)
        .margin_top(HEADING)
        .margin_right(20)
        .margin_bottom(6)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..x_end, 0.0..y_end)?;
    chart
        .configure_mesh()
        .max_light_lines(0)
        .bold_line_style(GRID)
        .axis_style(BLACK)
        .x_labels(6)
        .y_labels(6)
        .x_label_formatter(&|v| short_number(*v))
        .y_label_formatter(&|v| short_number(*v))
        .label_style((FAMILY, LABEL_SIZE))
        .x_desc(x_label)
        .axis_desc_style((FAMILY, DESCRIPTION_SIZE))
        .draw()?;
    Ok(chart)
}

/// The smallest of 1, 2, 2.5 or 5 times a power of ten at or above `value` (at least 1).
fn nice_ceiling(value: f64) -> f64 {
    if !value.is_finite() || value <= 1.0 {
        return 1.0;
    }
    let power = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|candidate| *candidate >= value)
        .unwrap_or(10.0 * power)
}

/// `1500` as `1.5K`, `2000000` as `2M`, small values with one decimal when needed.
fn short_number(value: f64) -> String {
    let trim = |v: f64, suffix: &str| {
        let text = format!("{v:.1}");
        format!("{}{suffix}", text.trim_end_matches(".0"))
    };
    if value >= 1e6 {
        trim(value / 1e6, "M")
    } else if value >= 1e4 {
        trim(value / 1e3, "K")
    } else {
        trim(value, "")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_limits_are_round_numbers() {
        assert_eq!(nice_ceiling(0.3), 1.0);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(12_345.0), 20_000.0);
        assert_eq!(nice_ceiling(2_400.0), 2_500.0);
        assert_eq!(short_number(12_000.0), "12K");
        assert_eq!(short_number(2_500.0), "2500");
        assert_eq!(short_number(0.5), "0.5");
        assert_eq!(short_number(3_000_000.0), "3M");
    }

    #[test]
    fn a_chart_draws_its_series_and_text_and_writes_a_png_of_its_size() {
        let mut canvas = Canvas::new(400, 300);
        let area = Area {
            x: 0,
            y: 0,
            width: 400,
            height: 300,
        };
        let series = [Series {
            name: "tx/s",
            color: RED,
            points: vec![(0.0, 0.0), (10.0, 100.0)],
        }];
        canvas.lines(area, "Throughput", "seconds", &series).unwrap();
        let pixels = || (0..400).flat_map(|x| (0..300).map(move |y| (x, y)));
        let red = pixels().filter(|(x, y)| canvas.get(*x, *y) == Some(RED)).count();
        assert!(red > 200, "only {red} red pixels");
        // The title is set in the embedded font: dark pixels in the heading's left part.
        let dark = |x: u32, y: u32| {
            canvas
                .get(x, y)
                .is_some_and(|RGBColor(r, g, b)| r < 100 && g < 100 && b < 100)
        };
        let title = (0..150).flat_map(|x| (0..HEADING).map(move |y| (x, y)));
        let inked = title.filter(|(x, y)| dark(*x, *y)).count();
        assert!(inked > 100, "only {inked} dark pixels where the title goes");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chart.png");
        canvas.save(&path).unwrap();
        let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
        let reader = decoder.read_info().unwrap();
        assert_eq!((reader.info().width, reader.info().height), (400, 300));
    }
}
