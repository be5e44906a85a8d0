//! `cargo bench -p gmem-checker --bench review`: a full review of Linux
//! 6.12 (Debian's linux-source-6.12), from a source directory and from the
//! tarball, in one run: read, detect, extract, compile, every vector, the
//! exhaustive bound and 10,000 random cases per operation.

use std::path::Path;
use std::time::Instant;

use gmem_checker::review::{self, FILES};
use gmem_checker::runner::{self, Verdict};
use gmem_checker::tree::{Tree, TreeSource};

const TARBALL: &str = "/usr/src/linux-source-6.12.tar.xz";

fn run(src: &TreeSource, what: &str) -> f64 {
    let t = Instant::now();
    let tree = Tree::open(src, FILES).expect("tree opens");
    let read = t.elapsed().as_secs_f64();
    let files = runner::load_vectors(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/vectors"
    )))
    .expect("vectors");
    let vectors = runner::vector_lookup(&files);
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let sources = runner::sources(true, 10_000, 1);
    let r = review::review(&tree, &sources, jobs, &vectors, &mut |_| {}).expect("reviews");
    let total = t.elapsed().as_secs_f64();
    assert_eq!(r.report.verdict, Verdict::Conforms, "6.12 conforms");
    println!(
        "{what:<10} read {read:>6.2}s  review {:>6.2}s  total {total:>6.2}s  ({} vectors, {} operations)",
        total - read,
        r.report.vectors,
        r.report.items.len()
    );
    total
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    assert!(
        Path::new(TARBALL).exists(),
        "{TARBALL}: install linux-source-6.12"
    );
    // The source directory: the tarball's review files written out once.
    let tree = Tree::open(&TreeSource::Tarball(TARBALL.into()), FILES).expect("tarball");
    let dir = std::env::temp_dir().join(format!("gmemforge-bench-612-{}", std::process::id()));
    for f in FILES {
        if let Some(text) = tree.file(f) {
            let p = dir.join(f);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(&p, text).expect("write");
        }
    }
    std::fs::write(
        dir.join("Makefile"),
        "# linux-source-6.12 files for the gmemforge bench\n",
    )
    .expect("write");
    run(&TreeSource::Dir(dir.clone()), "directory");
    run(&TreeSource::Tarball(TARBALL.into()), "tarball");
    let _ = std::fs::remove_dir_all(dir);
}
