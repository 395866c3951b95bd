//! SVG charts for `demo` and `compare`: panels side by side, each one figure against the
//! connection count (logarithmic), one line per server or model.
//!
//! plotters' SVG backend only: no bitmap encoders and no font files. Without a font backend
//! plotters measures text with a fixed-width estimate and the SVG names a generic family, so
//! the chart builds and renders on a machine with no fonts installed.

use std::path::Path;

use plotters::prelude::*;

/// One line of a panel.
pub struct Series {
    pub name: String,
    /// (connections, value)
    pub points: Vec<(f64, f64)>,
}

/// One chart in the row.
pub struct Panel {
    pub title: String,
    pub y_label: String,
    pub series: Vec<Series>,
}

/// Line colours, distinct on white and for the common colour blindnesses (Okabe and Ito).
const COLORS: [RGBColor; 7] = [
    RGBColor(213, 94, 0),
    RGBColor(0, 114, 178),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
];

const PANEL_WIDTH: u32 = 560;
const HEIGHT: u32 = 420;

/// Fails now if the chart cannot be written to `path`, rather than after the run that draws
/// it: creates its directory and opens the file for writing. What this creates (the file, the
/// directories that were missing) is removed again, so a run that fails later leaves nothing
/// behind (before, a `target/` it made stayed in the working directory; review, session 24).
pub fn check_writable(path: &Path) -> Result<(), String> {
    let created = create_dir(path)?;
    let existed = path.exists();
    let opened = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| format!("cannot write the chart {}: {e}", path.display()));
    if opened.is_ok() && !existed {
        let _ = std::fs::remove_file(path);
    }
    // Deepest first; `remove_dir` leaves a directory something else has written to since.
    for dir in created.iter().rev() {
        let _ = std::fs::remove_dir(dir);
    }
    opened.map(drop)
}

/// Creates the directory of `path` if it is missing; returns the directories it created,
/// outermost first.
fn create_dir(path: &Path) -> Result<Vec<std::path::PathBuf>, String> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(Vec::new());
    };
    let mut missing: Vec<_> = dir
        .ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
        .map(Path::to_path_buf)
        .collect();
    missing.reverse();
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(missing)
}

/// Writes the panels side by side to `path` (its directory is created if missing).
pub fn write_svg(path: &Path, title: &str, panels: &[Panel]) -> Result<(), String> {
    create_dir(path)?;
    let width = PANEL_WIDTH * panels.len().max(1) as u32;
    draw(path, title, panels, width).map_err(|e| format!("chart {}: {e}", path.display()))
}

fn draw(
    path: &Path,
    title: &str,
    panels: &[Panel],
    width: u32,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (width, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 20))?;
    let areas = root.split_evenly((1, panels.len().max(1)));
    for (panel, area) in panels.iter().zip(areas.iter()) {
        let points = panel.series.iter().flat_map(|s| s.points.iter());
        let (mut x_lo, mut x_hi, mut y_hi) = (f64::MAX, f64::MIN, 0.0f64);
        for &(x, y) in points {
            x_lo = x_lo.min(x);
            x_hi = x_hi.max(x);
            y_hi = y_hi.max(y);
        }
        if x_lo > x_hi {
            (x_lo, x_hi) = (1.0, 10.0);
        }
        // A margin either side on the log axis, and room above the highest point for the
        // legend.
        let (x_lo, x_hi) = (x_lo.max(1.0) / 1.5, x_hi.max(1.0) * 1.5);
        let y_hi = if y_hi > 0.0 { y_hi * 1.3 } else { 1.0 };
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d((x_lo..x_hi).log_scale(), 0.0..y_hi)?;
        chart
            .configure_mesh()
            .x_desc("connections")
            .y_desc(panel.y_label.as_str())
            .light_line_style(RGBColor(240, 240, 240))
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| short(*y))
            .draw()?;
        for (i, s) in panel.series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            chart
                .draw_series(LineSeries::new(
                    s.points.iter().copied(),
                    color.stroke_width(2),
                ))?
                .label(s.name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
            chart.draw_series(s.points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

/// 1234567 → "1.2M", 84000 → "84k", 12.5 → "12.5".
fn short(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 100.0 || v == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_an_svg_without_fonts() {
        let dir = std::env::temp_dir().join(format!("gorust-chart-{}", std::process::id()));
        let path = dir.join("c.svg");
        let series = |name: &str, k: f64| Series {
            name: name.into(),
            points: vec![(100.0, 1e5 * k), (1000.0, 8e4 * k)],
        };
        let panels = [
            Panel {
                title: "requests/s".into(),
                y_label: "req/s".into(),
                series: vec![series("a", 1.0), series("b", 0.9)],
            },
            Panel {
                title: "empty".into(),
                y_label: "KiB".into(),
                series: vec![],
            },
        ];
        write_svg(&path, "test", &panels).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("requests/s"),
            "{svg}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn short_numbers() {
        assert_eq!(short(1_234_567.0), "1.2M");
        assert_eq!(short(84_000.0), "84k");
        assert_eq!(short(12.5), "12.5");
        assert_eq!(short(0.0), "0");
    }

    /// The check leaves nothing behind, neither the probe file nor the directories it made
    /// (before, a `target/` it made stayed in the working directory of a run that failed
    /// later), keeps an old chart, and fails below a plain file.
    #[test]
    fn checking_a_chart_path_leaves_nothing_and_keeps_an_old_one() {
        let top = std::env::temp_dir().join(format!("gorust-chart-check-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&top);
        check_writable(&top.join("a").join("b").join("c.svg")).unwrap();
        assert!(!top.exists(), "{} left behind", top.display());
        let path = top.join("c.svg");
        std::fs::create_dir_all(&top).unwrap();
        std::fs::write(&path, "old").unwrap();
        check_writable(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert!(check_writable(&path.join("below-a-file.svg")).is_err());
        std::fs::remove_dir_all(&top).unwrap();
    }
}
