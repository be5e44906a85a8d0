//! `cargo bench --bench history`: `history` over the test repository
//! (`tests/common/history_repo.rs`: 35 commits, 5 of them changing the
//! reviewed functions) against one plain `review` of its last commit, in
//! one run, side by side, each with a cold cache (every compile) and a
//! warm one (the compile cache kept; history's verdict cache too). The
//! target: history cold under 3× the cold review.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

#[path = "../tests/common/history_repo.rs"]
mod history_repo;

const BIN: &str = env!("CARGO_BIN_EXE_gmemforge");

/// Runs gmemforge with its caches under `cache`; the seconds it took.
fn timed(cache: &Path, args: &[&str]) -> f64 {
    let t = Instant::now();
    let o = Command::new(BIN)
        .env("XDG_CACHE_HOME", cache)
        .args(args)
        .output()
        .expect("gmemforge runs");
    let secs = t.elapsed().as_secs_f64();
    // The tip conforms: anything else is a broken bench, not a figure.
    assert_eq!(
        o.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    secs
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let root = history_repo::scratch("bench");
    let r = history_repo::make_repo(&root.join("linux"));
    let dir = r.dir.to_str().expect("utf-8");
    let range = format!("{}..HEAD", r.base);
    let review = ["review", "--quiet", "--tree", dir, "--rev", "HEAD"];
    let history = ["history", "--quiet", "--tree", dir, "--rev", &range];
    let (c1, c2) = (root.join("cache-review"), root.join("cache-history"));
    let review_cold = timed(&c1, &review);
    let history_cold = timed(&c2, &history);
    let review_warm = timed(&c1, &review);
    let history_warm = timed(&c2, &history);
    println!(
        "test repository: {} commits after the base, 5 change the reviewed functions",
        r.commits
    );
    println!("                 cold      warm");
    println!("review HEAD   {review_cold:>7.2}s  {review_warm:>7.2}s");
    println!("history A..B  {history_cold:>7.2}s  {history_warm:>7.2}s");
    println!(
        "ratio         {:>7.2}×  {:>7.2}×   (target: cold under 3×)",
        history_cold / review_cold,
        history_warm / review_warm
    );
    let _ = std::fs::remove_dir_all(&root);
}
