//! A PNG chart of a benchmark run, drawn without a plotting library: line panels (throughput
//! and latency over time) and a bar panel (the latency histogram), labelled with a built-in
//! 5×7 pixel font so that no system font is needed.

use std::path::Path;

use anyhow::{Context, Result};

/// An RGB colour.
pub(crate) type Rgb = [u8; 3];

pub(crate) const BLUE: Rgb = [31, 119, 180];
pub(crate) const ORANGE: Rgb = [255, 127, 14];
pub(crate) const GREEN: Rgb = [44, 160, 44];
pub(crate) const RED: Rgb = [214, 39, 40];
const BLACK: Rgb = [0, 0, 0];
const GRID: Rgb = [225, 225, 225];

/// A named series of points.
pub(crate) struct Series<'a> {
    pub(crate) name: &'a str,
    pub(crate) color: Rgb,
    pub(crate) points: Vec<(f64, f64)>,
}

/// A picture being drawn, RGB, row by row.
pub(crate) struct Canvas {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

/// A panel's place on the canvas.
#[derive(Clone, Copy)]
pub(crate) struct Area {
    pub(crate) x: usize,
    pub(crate) y: usize,
    pub(crate) width: usize,
    pub(crate) height: usize,
}

/// Room around a panel's plot for its title and axis labels.
const MARGIN_LEFT: usize = 80;
const MARGIN_TOP: usize = 30;
const MARGIN_BOTTOM: usize = 40;
const MARGIN_RIGHT: usize = 20;
/// Text is drawn at twice the font's size.
const SCALE: usize = 2;

impl Canvas {
    /// A white canvas.
    pub(crate) fn new(width: usize, height: usize) -> Canvas {
        Canvas {
            width,
            height,
            pixels: vec![255; width * height * 3],
        }
    }

    fn set(&mut self, x: i64, y: i64, color: Rgb) {
        let (Ok(x), Ok(y)) = (usize::try_from(x), usize::try_from(y)) else {
            return;
        };
        if x >= self.width || y >= self.height {
            return;
        }
        let at = (y * self.width + x) * 3;
        if let Some(pixel) = self.pixels.get_mut(at..at + 3) {
            pixel.copy_from_slice(&color);
        }
    }

    /// The colour at `(x, y)`, if inside.
    #[cfg(test)]
    pub(crate) fn get(&self, x: usize, y: usize) -> Option<Rgb> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let at = (y * self.width + x) * 3;
        self.pixels.get(at..at + 3).and_then(|p| p.try_into().ok())
    }

    fn fill(&mut self, x: usize, y: usize, width: usize, height: usize, color: Rgb) {
        for row in y..y.saturating_add(height) {
            for column in x..x.saturating_add(width) {
                self.set(column as i64, row as i64, color);
            }
        }
    }

    /// A line two pixels thick.
    fn line(&mut self, from: (f64, f64), to: (f64, f64), color: Rgb) {
        let steps = (to.0 - from.0).abs().max((to.1 - from.1).abs()).ceil().max(1.0) as usize;
        for step in 0..=steps {
            let t = step as f64 / steps as f64;
            let x = (from.0 + (to.0 - from.0) * t).round() as i64;
            let y = (from.1 + (to.1 - from.1) * t).round() as i64;
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                self.set(x + dx, y + dy, color);
            }
        }
    }

    /// Writes `text` with its top left corner at `(x, y)`.
    pub(crate) fn text(&mut self, x: usize, y: usize, text: &str, color: Rgb) {
        for (i, c) in text.chars().enumerate() {
            let rows = glyph(c);
            let left = x + i * 6 * SCALE;
            for (row, bits) in rows.iter().enumerate() {
                for column in 0..5 {
                    if bits & (0x10 >> column) != 0 {
                        self.fill(left + column * SCALE, y + row * SCALE, SCALE, SCALE, color);
                    }
                }
            }
        }
    }

    fn text_width(text: &str) -> usize {
        text.chars().count() * 6 * SCALE
    }

    /// A panel of lines: axes from zero to the largest value, a title and a legend.
    pub(crate) fn lines(&mut self, area: Area, title: &str, x_label: &str, series: &[Series<'_>]) {
        let points = series.iter().flat_map(|s| s.points.iter());
        let (x_max, y_max) = points.fold((0.0_f64, 0.0_f64), |(x, y), p| (x.max(p.0), y.max(p.1)));
        let plot = self.axes(area, title, x_label, x_max, y_max);
        for s in series {
            let mut previous = None;
            for point in &s.points {
                let here = plot.at(point.0, point.1);
                if let Some(previous) = previous {
                    self.line(previous, here, s.color);
                }
                previous = Some(here);
            }
        }
        let mut x = area.x + area.width - MARGIN_RIGHT;
        for s in series.iter().rev() {
            x = x.saturating_sub(Self::text_width(s.name) + 30);
            self.fill(x, area.y + 8, 14, 14, s.color);
            self.text(x + 20, area.y + 8, s.name, BLACK);
        }
    }

    /// A panel of bars over `[0, upper)`, one per count.
    pub(crate) fn bars(&mut self, area: Area, title: &str, x_label: &str, counts: &[u64], upper: f64, color: Rgb) {
        let y_max = counts.iter().copied().max().unwrap_or(0) as f64;
        let plot = self.axes(area, title, x_label, upper, y_max);
        let width = upper / counts.len().max(1) as f64;
        for (i, count) in counts.iter().enumerate() {
            let (left, top) = plot.at(i as f64 * width, *count as f64);
            let (right, bottom) = plot.at((i + 1) as f64 * width, 0.0);
            let pixels = (right - left).max(1.0) as usize;
            self.fill(
                left as usize,
                top as usize,
                pixels.saturating_sub(1).max(1),
                (bottom - top).max(0.0) as usize,
                color,
            );
        }
    }

    /// Draws the frame, grid and tick labels of a panel and returns its plot's mapping.
    fn axes(&mut self, area: Area, title: &str, x_label: &str, x_max: f64, y_max: f64) -> Plot {
        let plot = Plot {
            left: (area.x + MARGIN_LEFT) as f64,
            top: (area.y + MARGIN_TOP) as f64,
            width: area.width.saturating_sub(MARGIN_LEFT + MARGIN_RIGHT) as f64,
            height: area.height.saturating_sub(MARGIN_TOP + MARGIN_BOTTOM) as f64,
            x_max: nice_ceiling(x_max),
            y_max: nice_ceiling(y_max),
        };
        self.text(area.x + 10, area.y + 8, title, BLACK);
        for tick in 0..=5 {
            let y_value = plot.y_max * f64::from(tick) / 5.0;
            let (_, y) = plot.at(0.0, y_value);
            self.line((plot.left, y), (plot.left + plot.width, y), GRID);
            let label = short_number(y_value);
            let x = (plot.left as usize).saturating_sub(Self::text_width(&label) + 6);
            self.text(x, (y as usize).saturating_sub(7), &label, BLACK);
            let x_value = plot.x_max * f64::from(tick) / 5.0;
            let (x, _) = plot.at(x_value, 0.0);
            let label = short_number(x_value);
            let below = (plot.top + plot.height) as usize + 6;
            self.text(
                (x as usize).saturating_sub(Self::text_width(&label) / 2),
                below,
                &label,
                BLACK,
            );
        }
        let bottom = plot.top + plot.height;
        self.line((plot.left, plot.top), (plot.left, bottom), BLACK);
        self.line((plot.left, bottom), (plot.left + plot.width, bottom), BLACK);
        let label_x = (plot.left + plot.width / 2.0) as usize - Self::text_width(x_label) / 2;
        self.text(label_x, bottom as usize + 22, x_label, BLACK);
        plot
    }

    /// Writes the canvas to `path` as a PNG file.
    pub(crate) fn save(&self, path: &Path) -> Result<()> {
        let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut encoder = png::Encoder::new(
            std::io::BufWriter::new(file),
            u32::try_from(self.width)?,
            u32::try_from(self.height)?,
        );
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

/// Maps values to pixels inside a panel.
struct Plot {
    left: f64,
    top: f64,
    width: f64,
    height: f64,
    x_max: f64,
    y_max: f64,
}

impl Plot {
    fn at(&self, x: f64, y: f64) -> (f64, f64) {
        (
            self.left + self.width * (x / self.x_max).clamp(0.0, 1.0),
            self.top + self.height * (1.0 - (y / self.y_max).clamp(0.0, 1.0)),
        )
    }
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

/// The 5×7 bitmap of `c` (lower case as upper case), one byte a row, the high bit of five on
/// the left; a box for characters the font lacks.
fn glyph(c: char) -> [u8; 7] {
    match c.to_ascii_uppercase() {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        'A' => [0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        ' ' => [0; 7],
        '.' => [0, 0, 0, 0, 0, 0x0C, 0x0C],
        ',' => [0, 0, 0, 0, 0x0C, 0x04, 0x08],
        ':' => [0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0],
        '-' => [0, 0, 0, 0x1F, 0, 0, 0],
        '+' => [0, 0x04, 0x04, 0x1F, 0x04, 0x04, 0],
        '=' => [0, 0, 0x1F, 0, 0x1F, 0, 0],
        '/' => [0, 0x01, 0x02, 0x04, 0x08, 0x10, 0],
        '(' => [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
        ')' => [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
        '%' => [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03],
        '<' => [0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02],
        '>' => [0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08],
        '_' => [0, 0, 0, 0, 0, 0, 0x1F],
        _ => [0x1F, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1F],
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
    fn a_chart_draws_its_series_and_writes_a_png_of_its_size() {
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
        canvas.lines(area, "THROUGHPUT", "s", &series);
        let red = (0..400).flat_map(|x| (0..300).map(move |y| (x, y)));
        let painted = red.filter(|(x, y)| canvas.get(*x, *y) == Some(RED)).count();
        assert!(painted > 200, "only {painted} red pixels");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chart.png");
        canvas.save(&path).unwrap();
        let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
        let reader = decoder.read_info().unwrap();
        assert_eq!((reader.info().width, reader.info().height), (400, 300));
    }
}
