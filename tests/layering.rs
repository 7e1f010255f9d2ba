//! The library's modules depend one way, from capture up to the outputs
//! (ARCHITECTURE.md, "Layers"): a module may name (`crate::x`) only the
//! modules listed before it. Read from the sources themselves, so a new
//! upward import fails here with the file and line that made it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The layers, lowest first. A module may depend on any module before it.
const LAYERS: &[&str] = &[
    // vocabulary and utilities
    "time",
    "contract",
    "prefetch",
    "live_out",
    // decode, then the sources (which name link types)
    "packet",
    "capture",
    // pure parsers, then the knowledge table that names their UUIDs
    "proto",
    "kb",
    "roles",
    "policy",
    // what the shard workers emit, their flow state
    "event",
    "flow",
    // findings, then the stages that make them
    "finding",
    "correlate",
    "pipeline",
    "taps",
    "verdict",
    // the composer, then the outputs
    "analysis",
    "evidence_pcap",
    "report",
    "stream",
    "baseline",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `crate::name` references in the non-test code of one file, with lines.
fn references(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        // Unit tests may reach anywhere; they are not part of the layering.
        if line.starts_with("#[cfg(test)]")
            && lines
                .get(i + 1)
                .is_some_and(|n| n.starts_with("mod ") || n.starts_with("pub mod "))
        {
            break;
        }
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            out.push((i + 1, name));
        }
    }
    out
}

#[test]
fn modules_depend_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let rank: BTreeMap<&str, usize> = LAYERS.iter().enumerate().map(|(i, m)| (*m, i)).collect();
    let mut wrong = Vec::new();
    for path in &files {
        let rel = path.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if matches!(module.as_str(), "lib" | "main" | "bin") || rel.ends_with("tests.rs") {
            continue;
        }
        let Some(&own) = rank.get(module.as_str()) else {
            wrong.push(format!(
                "src/{}: module `{module}` has no layer in tests/layering.rs",
                rel.display()
            ));
            continue;
        };
        let text = fs::read_to_string(path).unwrap();
        for (line, name) in references(&text) {
            if name == module || name == "Ts" {
                continue;
            }
            match rank.get(name.as_str()) {
                Some(&r) if r < own => {}
                Some(_) => wrong.push(format!(
                    "src/{}:{line}: `{module}` uses `{name}`, a layer above it",
                    rel.display()
                )),
                None => wrong.push(format!(
                    "src/{}:{line}: `crate::{name}` is not a module with a layer",
                    rel.display()
                )),
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn architecture_md_lists_the_same_layers() {
    let doc =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md")).unwrap();
    let line = LAYERS
        .iter()
        .map(|m| format!("`{m}`"))
        .collect::<Vec<_>>()
        .join(" → ");
    assert!(
        doc.contains(&line),
        "ARCHITECTURE.md should list the layers as:\n{line}"
    );
}

#[test]
fn the_checker_sees_upward_imports() {
    let refs = references(
        "use crate::verdict::Finding;\n// crate::report in a comment\nfn f() { crate::flow::x(); }\n#[cfg(test)]\nmod tests {\n    use crate::analysis;\n}\n",
    );
    assert_eq!(
        refs,
        vec![(1, "verdict".to_string()), (3, "flow".to_string())]
    );
}
