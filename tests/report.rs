//! `--report FILE.html`, rendered by a real headless browser (Debian's
//! chromium): the page for the May 2023 range bug must show the skipped
//! binding, as pixels; every operation draws its own counterexample.

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
    screenshot_sized(page, 1100)
}

/// As [`screenshot`], `height` pixels tall.
fn screenshot_sized(page: &Path, height: u32) -> (u32, u32, Vec<u8>) {
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
        .arg(format!("--window-size=1000,{height}"))
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

/// The page as chromium parsed and laid it out (`--dump-dom`).
fn dom(page: &Path) -> String {
    let profile = tmp("chromium-profile-dom", "");
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .args([
            "--disable-background-networking",
            "--disable-component-update",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs (scripts/test.sh installs Debian's chromium)");
    assert!(
        out.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `<svg class="picture picture-OP">` element of the DOM, up to its end.
fn picture<'a>(dom: &'a str, op: &str) -> &'a str {
    let start = dom
        .find(&format!("class=\"picture picture-{op}\""))
        .unwrap_or_else(|| panic!("no picture for {op}"));
    let end = dom[start..].find("</svg>").map_or(dom.len(), |e| start + e);
    &dom[start..end]
}

/// Every operation draws its counterexample: one run with a mutant per
/// operation, the page rendered by chromium, each operation's picture
/// present in the DOM with the elements that tell its story, the model's
/// reasons beside it, and the page's pixels not blank (bind's overhang in
/// red).
#[test]
fn every_operation_has_a_picture_that_renders() {
    let page = tmp("all", ".html");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gmemforge"));
    cmd.args(["check", "--random", "0", "--report"]).arg(&page);
    for m in [
        "solo-2023-range",      // invalidate, punch-hole
        "u32-error-code",       // classify
        "prepare-2m-unchecked", // prepare
        "invalidate-no-psmash", // gmem-invalidate, punch-hole
        "prefault-ignores-rule",
        "bind-past-eof",
        "prepare-unwired", // get-pfn
    ] {
        cmd.args(["--impl", &format!("mutant:{m}")]);
    }
    let out = cmd.output().expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let dom = dom(&page);
    let expect: &[(&str, &[&str])] = &[
        ("invalidate", &["class=\"skipped\""]),
        ("classify", &["class=\"bit deciding\""]),
        (
            "bind",
            &[
                "class=\"eof\"",
                "class=\"new-binding\"",
                "class=\"past-eof\"",
                "i_size = 4096",
            ],
        ),
        (
            "prepare",
            &["rmp-before", "rmp-model", "rmp-c", "class=\"cell differs\""],
        ),
        (
            "gmem-invalidate",
            &[
                "rmp-before",
                "rmp-c",
                "class=\"cell in-range\"",
                "class=\"cell differs\"",
            ],
        ),
        ("punch-hole", &["rmp-before", "rmp-model", "rmp-c"]),
        (
            "pre-fault",
            &[
                "class=\"memslot\"",
                "class=\"requested\"",
                "class=\"mapped\"",
                "class=\"private\"",
            ],
        ),
        (
            "get-pfn",
            &[
                "class=\"binding faulting\"",
                "class=\"fault\"",
                "class=\"prepare unmatched\"",
            ],
        ),
    ];
    for (op, elements) in expect {
        let svg = picture(&dom, op);
        for e in *elements {
            assert!(svg.contains(e), "{op}'s picture lacks {e}:\n{svg}");
        }
    }
    assert_eq!(
        gmem_checker::ops::OPERATIONS.len(),
        expect.len(),
        "an operation without a tested picture"
    );
    // The model's reasons, per counterexample, with the bind rule's values.
    assert!(dom.matches("class=\"model-why\"").count() >= expect.len());
    assert!(
        dom.contains("offset + npages * PAGE_SIZE &gt; i_size: 0 + 2 * 4096 = 8192 &gt; 4096"),
        "bind's rule in the page"
    );
    let (_, _, px) = screenshot_sized(&page, 6000);
    let drawn = px
        .chunks_exact(4)
        .filter(|p| p[..3] != [255, 255, 255])
        .count();
    assert!(drawn > 100_000, "the page is blank: {drawn} pixels drawn");
    // Bind alone, as pixels: the binding's overhang past i_size, red.
    let bind = tmp("bind", ".html");
    let out = Command::new(env!("CARGO_BIN_EXE_gmemforge"))
        .args([
            "check",
            "--random",
            "0",
            "--impl",
            "mutant:bind-past-eof",
            "--report",
        ])
        .arg(&bind)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let (_, _, px) = screenshot_sized(&bind, 1600);
    let overhang = count(&px, (242, 179, 180), 14);
    let red = count(&px, (214, 39, 40), 14);
    assert!(overhang > 2000, "the overhang is drawn: {overhang} pixels");
    assert!(red > 100, "i_size marked: {red} red pixels");
}
