//! `--report FILE.html`, rendered by a real headless browser (Debian's
//! chromium): the page for the May 2023 range bug must show the skipped
//! binding, as pixels.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A per-process temporary path ending in `ext` (chromium decides what a
/// file:// URL is by its extension).
fn tmp(name: &str, ext: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "gmemforge-report-{name}-{}{ext}",
        std::process::id()
    ))
}

/// Renders `page` to a PNG with headless chromium and decodes it.
fn screenshot(page: &Path) -> (u32, u32, Vec<u8>) {
    let png = tmp("shot", ".png");
    let profile = tmp("chromium-profile", "");
    let status = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
        ])
        .args([
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--window-size=1000,1100")
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs (scripts/test.sh installs Debian's chromium)");
    assert!(
        status.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let decoder = png::Decoder::new(std::fs::File::open(&png).expect("screenshot written"));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("a frame");
    buf.truncate(info.buffer_size());
    // Normalise to RGBA whichever colour type chromium chose.
    let px = match info.color_type {
        png::ColorType::Rgba => buf,
        png::ColorType::Rgb => buf
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        other => panic!("unexpected PNG colour type {other:?}"),
    };
    (info.width, info.height, px)
}

/// Pixels within `tol` of `rgb`.
fn count(px: &[u8], rgb: (u8, u8, u8), tol: i32) -> usize {
    px.chunks_exact(4)
        .filter(|p| {
            (i32::from(p[0]) - i32::from(rgb.0)).abs() <= tol
                && (i32::from(p[1]) - i32::from(rgb.1)).abs() <= tol
                && (i32::from(p[2]) - i32::from(rgb.2)).abs() <= tol
        })
        .count()
}

#[test]
fn the_2023_range_bug_report_shows_the_skipped_binding() {
    let page = tmp("page", ".html");
    let out = Command::new(env!("CARGO_BIN_EXE_gmemforge"))
        .args([
            "check",
            "--impl",
            "mutant:solo-2023-range",
            "--random",
            "0",
            "--report",
        ])
        .arg(&page)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let html = std::fs::read_to_string(&page).expect("report written");
    assert!(
        html.contains("skipped") && html.contains("<svg"),
        "the picture is in the page"
    );
    assert!(
        !html.contains("http://")
            || html
                .matches("http://")
                .all(|_| html.contains("xmlns=\"http://www.w3.org/2000/svg\"")),
        "no network"
    );
    let (w, h, px) = screenshot(&page);
    assert!(w >= 900 && h >= 900);
    // The model's zap: green at 0.85 over white; the C's skipped zap: the
    // dashed red outline at full strength.
    let green = count(&px, (75, 174, 75), 14);
    let red = count(&px, (214, 39, 40), 14);
    assert!(green > 500, "model zap drawn: {green} green pixels");
    assert!(red > 100, "skipped zap outlined: {red} red pixels");
}
