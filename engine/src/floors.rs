//! A tidy test guarding the engine's floors (the block under "Floors of the engine" in
//! `ARCHITECTURE.md`): every `use crate::…` of a module names its own floor or one below, every
//! module is on a floor, and no two modules import each other, directly or around a circle.
//! Test code (`tests.rs` files, and everything after a `#[cfg(test)]` line) is exempt.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module name → floor (0 = bottom), read from ARCHITECTURE.md's floors block.
fn floors(architecture: &str) -> BTreeMap<String, usize> {
    let section = architecture.split("## Floors of the engine").nth(1).expect("a floors section");
    let block = section.split("```").nth(1).expect("a code block with the floors");
    let lines: Vec<&str> = block.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut out = BTreeMap::new();
    for (i, line) in lines.iter().enumerate() {
        let floor = lines.len() - 1 - i;
        let names = line.split('(').next().unwrap_or_default();
        for name in names.split_whitespace() {
            let name = name.trim_end_matches(['/', '*']);
            assert!(out.insert(name.to_string(), floor).is_none(), "{name} is on two floors");
        }
    }
    out
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read the source directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The crate modules `source` imports with `use crate::…` (also `pub use`, and groups
/// `use crate::{a::X, b}` spanning lines), up to its first `#[cfg(test)]`.
fn imports(source: &str) -> BTreeSet<String> {
    let code = source.split("#[cfg(test)]").next().unwrap_or_default();
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("use crate::") {
        let before = &rest[..at];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let is_code = !before[line_start..].trim_start().starts_with("//");
        let tail = &rest[at + "use crate::".len()..];
        let stmt = tail.split(';').next().unwrap_or_default();
        if is_code {
            if let Some(group) = stmt.strip_prefix('{') {
                // Top-level items of the group: split on commas outside nested braces.
                let mut depth = 0;
                let mut item = String::new();
                for c in group.chars().chain(std::iter::once(',')) {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => continue, // the group's closing brace
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            out.insert(first_segment(&item));
                            item.clear();
                            continue;
                        }
                        _ => {}
                    }
                    item.push(c);
                }
            } else {
                out.insert(first_segment(stmt));
            }
        }
        rest = tail;
    }
    out.remove("");
    out
}

/// `a` of `a::b::C` (or of `a`).
fn first_segment(path: &str) -> String {
    path.trim().split("::").next().unwrap_or_default().trim().to_string()
}

/// The top-level module a file belongs to (`swarm` for `swarm/connection.rs`), or `None` for
/// the crate root.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).expect("a file under src");
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.trim_end_matches(".rs");
    (name != "lib").then(|| name.to_string())
}

/// Module → the other crate modules its non-test code imports.
fn import_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let Some(module) = module_of(src, &file).filter(|m| m != "floors") else {
            continue; // the crate root, and this test
        };
        let entry = graph.entry(module.clone()).or_default();
        if file.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let source = std::fs::read_to_string(&file).expect("read a source file");
        entry.extend(imports(&source).into_iter().filter(|m| *m != module));
    }
    graph
}

/// A circle through `start`, if any (as the path of modules).
fn circle(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_string(), vec![start.to_string()])];
    let mut seen = BTreeSet::new();
    while let Some((node, path)) = stack.pop() {
        for next in graph.get(&node).into_iter().flatten() {
            if next == start {
                let mut p = path.clone();
                p.push(start.to_string());
                return Some(p);
            }
            if seen.insert(next.clone()) {
                let mut p = path.clone();
                p.push(next.clone());
                stack.push((next.clone(), p));
            }
        }
    }
    None
}

/// Breaches of the floors in `graph`, as messages.
fn breaches(graph: &BTreeMap<String, BTreeSet<String>>, floors: &BTreeMap<String, usize>) -> Vec<String> {
    let mut out = Vec::new();
    for (module, deps) in graph {
        let Some(&floor) = floors.get(module) else {
            out.push(format!("{module} is on no floor of ARCHITECTURE.md"));
            continue;
        };
        for dep in deps {
            match floors.get(dep) {
                Some(&f) if f > floor => {
                    out.push(format!("{module} (floor {floor}) imports {dep} (floor {f}), a floor above"))
                }
                Some(_) => {}
                None => out.push(format!("{module} imports {dep}, which is on no floor")),
            }
        }
        if let Some(path) = circle(graph, module) {
            out.push(format!("circle: {}", path.join(" -> ")));
        }
    }
    out
}

#[test]
fn no_module_imports_from_a_floor_above_its_own() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let architecture =
        std::fs::read_to_string(root.join("../ARCHITECTURE.md")).expect("read ARCHITECTURE.md");
    let floors = floors(&architecture);
    let graph = import_graph(&root.join("src"));
    assert!(graph.contains_key("swarm") && graph.contains_key("types"), "the scan found the modules");
    let found = breaches(&graph, &floors);
    assert!(found.is_empty(), "the engine's floors are breached:\n{}", found.join("\n"));
}

#[test]
fn the_checker_catches_an_upward_import_and_a_circle() {
    let floors = floors("## Floors of the engine\n\n```\n top/   (comment)\n mid  other\n low\n```\n");
    assert_eq!(floors.get("top"), Some(&2));
    assert_eq!(floors.get("other"), Some(&1));
    let source =
        "//! use crate::top::X;\nuse crate::low::A;\npub use crate::{\n    mid::{B, C},\n    other,\n};\n\
                  #[cfg(test)]\nuse crate::top::T;\n";
    let found = imports(source);
    assert_eq!(found.into_iter().collect::<Vec<_>>(), ["low", "mid", "other"]);
    let graph = |edges: &[(&str, &str)]| {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in edges {
            g.entry(a.to_string()).or_default().insert(b.to_string());
            g.entry(b.to_string()).or_default();
        }
        g
    };
    assert!(breaches(&graph(&[("top", "mid"), ("mid", "low")]), &floors).is_empty());
    let up = breaches(&graph(&[("low", "top")]), &floors);
    assert!(up.iter().any(|m| m.contains("low (floor 0) imports top (floor 2)")), "{up:?}");
    let round = breaches(&graph(&[("mid", "other"), ("other", "mid")]), &floors);
    assert!(round.iter().any(|m| m.starts_with("circle: ")), "{round:?}");
    let lost = breaches(&graph(&[("nowhere", "low")]), &floors);
    assert!(lost.iter().any(|m| m.contains("nowhere is on no floor")), "{lost:?}");
}
