//! The layout's promises, checked on the source: only the adapters name the
//! AWS SDK; the layers hold (no service imports another, the shared nouns
//! and the ports import nothing above them, the mechanics no service); and
//! no module of `vault` imports a module that imports it, directly or
//! through others.

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

/// The paths a module's production code names, made absolute: `crate::a`,
/// `super::a` (from the module's parent), `self::a`, and each member of a
/// group (`crate::{a, b::c}`), whether in a `use`, a `pub use` re-export or
/// an expression.
fn named_paths(module: &str, source: &str) -> Vec<Vec<String>> {
    // Comments name modules without importing them.
    let code: String =
        production(source).lines().map(|l| l.split("//").next().unwrap_or_default()).collect::<Vec<_>>().join("\n");
    let code = code.as_str();
    let own: Vec<String> = if module.is_empty() { Vec::new() } else { module.split("::").map(String::from).collect() };
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    for start in 0..code.len() {
        if !code.is_char_boundary(start)
            || (start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || b"_:".contains(&bytes[start - 1])))
        {
            continue;
        }
        let rest = &code[start..];
        let (mut base, mut rest) = if let Some(r) = rest.strip_prefix("crate::") {
            (Vec::new(), r)
        } else if let Some(r) = rest.strip_prefix("self::") {
            (own.clone(), r)
        } else if rest.starts_with("super::") {
            let mut base = own.clone();
            let mut r = rest;
            while let Some(next) = r.strip_prefix("super::") {
                base.pop();
                r = next;
            }
            (base, r)
        } else {
            continue;
        };
        // `crate::a::{b, c::d}`: the prefix, then each member.
        loop {
            let segment: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if segment.is_empty() {
                break;
            }
            base.push(segment.clone());
            rest = &rest[segment.len()..];
            match rest.strip_prefix("::") {
                Some(r) => rest = r,
                None => break,
            }
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let end = group
                .char_indices()
                .find(|(_, c)| {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => return true,
                        '}' => depth -= 1,
                        _ => {}
                    }
                    false
                })
                .map_or(group.len(), |(i, _)| i);
            for member in group[..end].split(',') {
                let path: Vec<String> = member
                    .trim()
                    .split("::")
                    .map(|s| s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>())
                    .take_while(|s| !s.is_empty())
                    .collect();
                out.push([base.clone(), path].concat());
            }
        }
        out.push(base);
    }
    out
}

/// What each module of `modules` imports: the longest module path each
/// named path resolves to, the module itself and its ancestors left out.
fn imports_of(modules: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, source) in modules {
        for parts in named_paths(module, source) {
            let target = (1..=parts.len())
                .rev()
                .map(|n| parts[..n].join("::"))
                .find(|candidate| modules.contains_key(candidate));
            if let Some(target) = target.filter(|t| t != module && !module.starts_with(&format!("{t}::"))) {
                edges.entry(module.clone()).or_default().insert(target);
            }
        }
    }
    edges
}

/// What each module of `src/` imports.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    imports_of(&modules())
}

/// The top-level module a module path is in (`rekey::region`: `rekey`).
fn top(module: &str) -> &str {
    module.split("::").next().unwrap_or(module)
}

/// The services: each generic over the ports it takes, none using another.
const SERVICES: &[&str] = &["ingest", "playback", "guardian", "audit", "rekey", "retention"];
/// The shared nouns and the ports: the vocabulary every layer speaks, which
/// itself uses nothing above it (no keyring, flow, vault object, settings,
/// service or adapter).
const VOCABULARY: &[&str] = &["errors", "time", "arn", "recording", "retention_policy", "ports"];
/// The mechanics below the services, above the vocabulary.
const MECHANICS: &[&str] = &["keyring", "flow", "object", "config", "metrics", "wipe", "bootstrap", "https"];

/// Every import that breaks the layers: a service importing another
/// service; the vocabulary importing anything but itself; the mechanics
/// importing a service or an adapter.
fn layer_violations(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut found = Vec::new();
    for (module, targets) in edges {
        let from = top(module);
        for target in targets {
            let to = top(target);
            let broken = (SERVICES.contains(&from) && SERVICES.contains(&to) && from != to)
                || (VOCABULARY.contains(&from) && !VOCABULARY.contains(&to))
                || (MECHANICS.contains(&from) && !MECHANICS.contains(&to) && !VOCABULARY.contains(&to));
            if broken {
                found.push(format!("{module} imports {target}"));
            }
        }
    }
    found
}

#[test]
fn every_module_is_in_a_layer() {
    let known: BTreeSet<&str> =
        SERVICES.iter().chain(VOCABULARY).chain(MECHANICS).chain(&["aws", "memory", "contract", ""]).copied().collect();
    for module in modules().keys() {
        assert!(known.contains(top(module)), "{module} is in no layer of this test: name its layer here");
    }
}

#[test]
fn no_service_imports_another_and_the_vocabulary_imports_nothing_above_it() {
    let edges = imports();
    let violations = layer_violations(&edges);
    assert!(violations.is_empty(), "imports across the layers:\n{}", violations.join("\n"));
    // The scan sees the imports the layers allow.
    assert!(edges["rekey"].contains("object"), "rekey uses the vault object's life: {:?}", edges["rekey"]);
    assert!(edges["recording"].contains("arn"), "{:?}", edges.get("recording"));
}

/// The check itself, on imports injected into real sources: each way a
/// service can reach another, and a shared noun reaching the keyring.
#[test]
fn the_layer_check_refuses_each_kind_of_forbidden_import() {
    let modules = modules();
    let injected = [
        ("rekey", "use crate::ingest::Outcome;\n"),
        ("rekey::region", "fn f() -> super::super::ingest::Outcome { todo!() }\n"),
        ("rekey", "pub use super::ingest::Outcome as Reexported;\n"),
        ("retention", "use crate::{playback, time};\n"),
        ("recording", "use crate::keyring::WrappingKey;\n"),
        ("ports::keys", "use crate::flow::FlowError;\n"),
        ("object", "use crate::rekey::RekeyTask;\n"),
    ];
    for (module, line) in injected {
        let mut sources = modules.clone();
        let source = sources.get_mut(module).unwrap_or_else(|| panic!("no module {module}"));
        *source = format!("{line}{source}");
        let edges = imports_of(&sources);
        let violations = layer_violations(&edges);
        assert!(
            violations.iter().any(|v| v.starts_with(&format!("{module} imports "))),
            "{line:?} in {module} went unnoticed: {violations:?}"
        );
    }
}

#[test]
fn no_module_imports_a_module_that_imports_it() {
    let edges = imports();
    // Depth-first search for a cycle.
    fn visit<'a>(
        node: &'a str,
        edges: &'a BTreeMap<String, BTreeSet<String>>,
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
    // the KMS adapter hands it) stay in freed heap blocks. Every main.rs
    // installs it through vault::bootstrap's macros, and they install it.
    let bootstrap = std::fs::read_to_string(src().join("bootstrap.rs")).unwrap();
    let allocator = "macro_rules! wipe_freed_memory {\n    () => {\n        // Freed memory keeps no copy of a data key, ours or the SDK's (vault::wipe).\n        #[global_allocator]\n        static ALLOCATOR: $crate::wipe::WipeOnFree = $crate::wipe::WIPE_ON_FREE;";
    assert!(bootstrap.contains(allocator), "wipe_freed_memory! installs vault::wipe::WipeOnFree");
    let lambda_main = &bootstrap[bootstrap.find("macro_rules! lambda_main {").expect("lambda_main!")..];
    let lambda_main = &lambda_main[..lambda_main.find("\n}\n").unwrap()];
    assert!(lambda_main.contains("$crate::wipe_freed_memory!();"), "lambda_main! installs it too");

    let functions = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut mains = Vec::new();
    for entry in std::fs::read_dir(&functions).unwrap().flatten() {
        let main = entry.path().join("src/main.rs");
        if main.exists() {
            mains.push(main);
        }
    }
    assert!(mains.len() >= 7, "the six Lambdas and the CLI: {mains:?}");
    for main in mains {
        let source = std::fs::read_to_string(&main).unwrap();
        let code: Vec<&str> = source.lines().filter(|l| !l.trim_start().starts_with("//")).collect();
        let installs = code
            .iter()
            .filter(|l| l.starts_with("vault::lambda_main!(") || **l == "vault::wipe_freed_memory!();")
            .count();
        assert_eq!(
            installs,
            1,
            "{} does not install vault::wipe::WipeOnFree once (vault::lambda_main! or vault::wipe_freed_memory!)",
            main.display()
        );
        assert!(!source.contains("#[global_allocator]"), "{} declares an allocator of its own", main.display());
    }
}
