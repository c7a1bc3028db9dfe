//! The runtime's layers (ARCHITECTURE.md) depend only downward: no file of a
//! layer names a module of a layer above it, directly (`crate::web::..`,
//! `web::..` inside a `use crate::{..}` group) or through a crate-root
//! re-export (`crate::Security`). Doc comments may link anywhere.

use std::{collections::HashMap, fs, path::Path};

/// Bottom to top.
const LAYERS: &[&str] = &[
    "model",
    "verify",
    "stores",
    "decision",
    "web",
    "issuer",
    "hardening",
];

fn rank(layer: &str) -> Option<usize> {
    LAYERS.iter().position(|l| *l == layer)
}

fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = fs::read_to_string(&path).unwrap();
            // Code only: stop at the unit tests, drop comments.
            let code: String = text
                .split("#[cfg(test)]\nmod tests")
                .next()
                .unwrap()
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            out.push((path.display().to_string(), code));
        }
    }
}

/// Crate-root names and the layer that defines them, from lib.rs's
/// `pub use layer::...` lines.
fn root_names(lib: &str) -> HashMap<String, usize> {
    let mut names = HashMap::new();
    let mut current: Option<usize> = None;
    for line in lib.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("pub use ") {
            current = rest.split("::").next().and_then(rank);
        }
        if let Some(layer) = current {
            for word in line.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
                if word.chars().next().is_some_and(|c| c.is_ascii_uppercase()) {
                    names.entry(word.to_owned()).or_insert(layer);
                }
            }
        }
        if line.ends_with(';') {
            current = None;
        }
    }
    names
}

#[test]
fn every_layer_uses_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("secure-runtime/src");
    let lib = fs::read_to_string(src.join("lib.rs")).unwrap();
    let roots = root_names(&lib);
    assert!(roots.get("Security") == rank("web").as_ref(), "{roots:?}");

    let mut violations = Vec::new();
    for layer in LAYERS {
        let own = rank(layer).unwrap();
        let mut files = Vec::new();
        sources(&src.join(layer), &mut files);
        let single = src.join(format!("{layer}.rs"));
        if single.exists() {
            files.push((
                single.display().to_string(),
                fs::read_to_string(&single).unwrap(),
            ));
        }
        assert!(!files.is_empty(), "no sources for layer {layer}");
        for (file, code) in files {
            for (i, line) in code.lines().enumerate() {
                let t = line.trim_start();
                for other in LAYERS {
                    let r = rank(other).unwrap();
                    let named = line.contains(&format!("crate::{other}::"))
                        || t.starts_with(&format!("{other}::"));
                    if named && r > own {
                        violations.push(format!("{file}:{}: {layer} uses {other}", i + 1));
                    }
                }
                for (name, &r) in &roots {
                    if r > own && line.contains(&format!("crate::{name}")) {
                        violations.push(format!("{file}:{}: {layer} uses crate::{name}", i + 1));
                    }
                }
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn no_source_file_is_over_600_lines_before_its_tests() {
    // Every line counts, documentation included, up to the first
    // `#[cfg(test)]`.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut long = Vec::new();
    let mut stack = vec![
        root.join("secure-runtime/src"),
        root.join("secure-macros/src"),
        root.join("src"),
    ];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = fs::read_to_string(&path).unwrap();
                let n = text
                    .lines()
                    .take_while(|l| !l.contains("#[cfg(test)]"))
                    .count();
                if n > 600 {
                    long.push(format!("{}: {n}", path.display()));
                }
            }
        }
    }
    assert!(long.is_empty(), "{long:?}");
}
