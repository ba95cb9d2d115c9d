//! The layout's promises, checked on the source: only the adapters name the
//! AWS SDK, and no module of `vault` imports a module that imports it,
//! directly or through others.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every module file under `src/`, by module path (`ports::catalog`).
fn modules() -> BTreeMap<String, String> {
    fn walk(dir: &Path, prefix: &[String], out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                walk(&path, &[prefix, &[name]].concat(), out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let module = match name.as_str() {
                    "mod" | "lib" => prefix.to_vec(),
                    _ => [prefix, &[name]].concat(),
                };
                out.insert(module.join("::"), std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&src(), &[], &mut out);
    out
}

/// The production part of a file: up to its `#[cfg(test)] mod`.
fn production(source: &str) -> &str {
    source.find("#[cfg(test)]\nmod tests").map_or(source, |at| &source[..at])
}

#[test]
fn only_the_adapters_name_the_aws_sdk() {
    for (module, source) in modules() {
        let names_sdk = source.contains("aws_sdk_") || source.contains("aws_smithy");
        assert!(!names_sdk || module == "aws" || module.starts_with("aws::"), "{module} names the AWS SDK");
    }
}

#[test]
fn no_module_imports_a_module_that_imports_it() {
    let modules = modules();
    // Edges: `crate::a::b::c` resolves to the longest module path it names.
    let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (module, source) in &modules {
        let code = production(source);
        for (at, _) in code.match_indices("crate::") {
            let path: String =
                code[at + 7..].chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
            let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
            let target = (1..=parts.len())
                .rev()
                .map(|n| parts[..n].join("::"))
                .find_map(|candidate| modules.get_key_value(&candidate).map(|(k, _)| k.as_str()));
            if let Some(target) = target.filter(|t| *t != module && !module.starts_with(&format!("{t}::"))) {
                edges.entry(module.as_str()).or_default().insert(target);
            }
        }
    }
    // Depth-first search for a cycle.
    fn visit<'a>(
        node: &'a str,
        edges: &BTreeMap<&'a str, BTreeSet<&'a str>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) {
        if let Some(at) = path.iter().position(|n| *n == node) {
            panic!("an import cycle: {} -> {node}", path[at..].join(" -> "));
        }
        if done.contains(node) {
            return;
        }
        path.push(node);
        for next in edges.get(node).into_iter().flatten() {
            visit(next, edges, path, done);
        }
        path.pop();
        done.insert(node);
    }
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        visit(node, &edges, &mut Vec::new(), &mut done);
    }
    assert!(edges.len() > 10, "the scan found the modules' imports: {edges:?}");
}

#[test]
fn every_binary_installs_the_allocator_that_wipes_freed_memory() {
    // vault::wipe: without it, the SDK's copies of a data key (and the one
    // the KMS adapter hands it) stay in freed heap blocks.
    let functions = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut mains = Vec::new();
    for entry in std::fs::read_dir(&functions).unwrap().flatten() {
        let main = entry.path().join("src/main.rs");
        if main.exists() {
            mains.push(main);
        }
    }
    assert!(mains.len() >= 5, "the four Lambdas and the CLI: {mains:?}");
    for main in mains {
        let source = std::fs::read_to_string(&main).unwrap();
        assert!(
            source.contains(
                "#[global_allocator]\nstatic ALLOCATOR: vault::wipe::WipeOnFree = vault::wipe::WIPE_ON_FREE;"
            ),
            "{} does not install vault::wipe::WipeOnFree",
            main.display()
        );
    }
}
